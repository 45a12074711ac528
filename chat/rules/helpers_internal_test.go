package rules

import (
	"errors"

	sb "github.com/switchboard/switchboard"
)

func asError(err error, target **sb.Error) bool { return errors.As(err, target) }
