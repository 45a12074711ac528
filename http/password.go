package http

import (
	"errors"
	"net/http"

	"golang.org/x/crypto/bcrypt"

	sb "github.com/switchboard/switchboard"
)

// HashPassword hashes a password with bcrypt. Passwords are 10 to 72 bytes.
func HashPassword(pw string) (string, error) {
	if len(pw) < 10 {
		return "", sb.FieldError("password", "password must be at least 10 characters")
	}
	if len(pw) > 72 {
		return "", sb.FieldError("password", "password must be at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// CheckPassword reports whether pw matches hash.
func CheckPassword(hash, pw string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

func asMaxBytes(err error, target **http.MaxBytesError) bool { return errors.As(err, target) }
