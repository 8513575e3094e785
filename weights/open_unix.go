//go:build unix

package weights

import (
	"errors"
	"os"
	"syscall"
)

func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

func clearNonblock(f *os.File) error {
	return syscall.SetNonblock(int(f.Fd()), false)
}

func isLinkLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }
