package switchboard

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in package http.
const (
	EInvalid      = "invalid"      // the request or input is malformed or breaks a rule
	ENotFound     = "not_found"    // the thing asked for does not exist (or is not visible)
	EConflict     = "conflict"     // the request clashes with current state
	EUnauthorized = "unauthorized" // no or bad credentials
	EForbidden    = "forbidden"    // credentials are fine but not allowed
	EUnavailable  = "unavailable"  // a dependency is down; try later
	ETooLarge     = "too_large"    // the request body is over the limit
	EInternal     = "internal"     // a bug or an unexpected failure
)

// Error is the domain error: a code that callers can branch on and a message
// that names the problem for a human. Messages never contain secrets or phone
// numbers.
type Error struct {
	Code    string
	Message string
	// Field names the input at fault, when there is one.
	Field string
	// Err is the underlying cause, kept for logs; never shown to API clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EInvalid error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the code and message that keeps err as cause.
func Wrap(err error, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the human message of the first *Error in err's chain,
// or a generic text for other errors, so internals never leak to clients.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
