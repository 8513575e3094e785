//go:build !unix

package main

import "os"

// Outside Unix no Mesa driver reads XDG_RUNTIME_DIR; any directory will do.
func ownedByMe(os.FileInfo) bool { return true }
