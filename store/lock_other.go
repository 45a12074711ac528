//go:build !unix

package store

import "os"

// lockFile is a no-op where flock is not available.
func lockFile(path string) (*os.File, error) { return nil, nil }
