package weights

import (
	"errors"
	"strconv"
)

// ErrNotFound is wrapped by the error returned when a tensor is not present.
var ErrNotFound = errors.New("not found")

// Error describes a problem with a weights file, a checkpoint directory or
// one of their tensors. Its message is a single line of the form
//
//	weights: <path>: tensor "<name>": <problem>
//
// where the path and tensor parts are left out when they do not apply.
type Error struct {
	// Path is the file or directory as the caller named it; empty for
	// errors from [ParseHeader], which does not know where its bytes came from.
	Path string
	// Tensor is the tensor the problem concerns, or empty.
	Tensor string
	// Err is the underlying problem.
	Err error
}

func (e *Error) Error() string {
	s := "weights: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Tensor != "" {
		// Quoting keeps the message on one line even if a hostile header
		// puts control characters in a tensor name.
		s += "tensor " + strconv.Quote(e.Tensor) + ": "
	}
	if e.Err == nil {
		return s + "error"
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// labelPath adds path to an *Error that lacks one.
func labelPath(err error, path string) error {
	var e *Error
	if errors.As(err, &e) && e.Path == "" {
		c := *e
		c.Path = path
		return &c
	}
	return err
}
