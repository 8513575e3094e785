package weights

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Size bounds for the small files a model directory holds. A config, a
// tokenizer or a prompt larger than these is not one; refusing it before
// reading keeps an endless or hostile file from exhausting memory.
const (
	MaxConfigBytes    = 4 << 20   // config.json, generation_config.json, index files
	MaxTokenizerBytes = 256 << 20 // tokenizer.json (Qwen3's is 11 MB)
	MaxPromptBytes    = 64 << 20  // a prompt file or a chat line
)

// OpenRegular opens path for reading and makes sure it is a regular file
// (or a symbolic link to one) before anything is read from it. A FIFO, a
// device or a socket where a file is expected would otherwise block in
// open or read forever; the open itself does not block (O_NONBLOCK on
// Unix, cleared again for regular files). A dangling or looping link is
// reported as such rather than as a missing file.
func OpenRegular(path string) (*os.File, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// openRegular is OpenRegular with errors that do not repeat the path, for
// callers whose error type names the file already.
func openRegular(path string) (*os.File, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, describeOpenError(path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, stripPath(err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))
	}
	if err := clearNonblock(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFileLimited reads a whole regular file of at most limit bytes. The
// bound is checked on the size before reading, and the read itself stops
// past it, so a file that grows while being read cannot run away either.
func ReadFileLimited(path string, limit int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %s this kind of file may have", path, fi.Size(), HumanBytes(limit))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, stripPath(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: grew past %s while being read", path, HumanBytes(limit))
	}
	return data, nil
}

// describeOpenError turns a failed open into a message in the user's
// terms (the caller adds the path). A missing file stays
// errors.Is(err, fs.ErrNotExist).
func describeOpenError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if target, lerr := os.Readlink(path); lerr == nil {
			return fmt.Errorf("dangling symbolic link to %s", target)
		}
		return errNoSuchFile
	}
	if isLinkLoop(err) {
		return errors.New("symbolic links loop")
	}
	if errors.Is(err, fs.ErrPermission) {
		return errors.New("permission denied")
	}
	return stripPath(err)
}

// errNoSuchFile reads "no such file" and is fs.ErrNotExist.
var errNoSuchFile = noSuchFile{}

type noSuchFile struct{}

func (noSuchFile) Error() string        { return "no such file" }
func (noSuchFile) Is(target error) bool { return target == fs.ErrNotExist }

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// HumanBytes formats a byte count with a binary unit, e.g. "4.0 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
