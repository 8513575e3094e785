package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// apiError is an error in the OpenAI shape:
// {"error":{"message","type","param","code"}}.
type apiError struct {
	status     int
	retryAfter int     // seconds, for the Retry-After header; 0: none
	Message    string  `json:"message"`
	Type       string  `json:"type"`
	Param      *string `json:"param"`
	Code       *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// invalid is a 400 naming the request field at fault ("" for none).
func invalid(param, format string, args ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

func withCode(e *apiError, code string) *apiError {
	e.Code = &code
	return e
}

// errorFor turns a backend error into the answer the client gets.
func errorFor(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, llm.ErrPromptTooLong):
		return withCode(&apiError{status: http.StatusBadRequest, Message: err.Error(), Type: "invalid_request_error"}, "context_length_exceeded")
	case errors.Is(err, llm.ErrQueueFull):
		// OpenAI's answer to too many requests: 429, a rate_limit_error,
		// and when to come back (whole seconds, rounded up).
		e := withCode(&apiError{status: http.StatusTooManyRequests, Message: err.Error(), Type: "rate_limit_error"}, "rate_limit_exceeded")
		e.retryAfter = 1
		var qf *llm.QueueFullError
		if errors.As(err, &qf) {
			e.retryAfter = max(1, int(math.Ceil(qf.RetryAfter.Seconds())))
		}
		return e
	case errors.Is(err, llm.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, Message: "the server is shutting down", Type: "server_error"}
	}
	var se StatusError
	if errors.As(err, &se) {
		status := se.HTTPStatus()
		e := &apiError{status: status, Message: err.Error(), Type: "invalid_request_error"}
		switch {
		case status == http.StatusTooManyRequests:
			e.Type = "rate_limit_error"
		case status >= 500:
			e.Type = "server_error"
		}
		return e
	}
	return &apiError{status: http.StatusInternalServerError, Message: err.Error(), Type: "server_error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
