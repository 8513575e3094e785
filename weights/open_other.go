//go:build !unix

package weights

import "os"

func openNonblock(path string) (*os.File, error) { return os.Open(path) }

func clearNonblock(*os.File) error { return nil }

func isLinkLoop(error) bool { return false }
