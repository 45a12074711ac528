package link

import "crypto/rand"

// CodeLen is the length of a short code: 12 base62 characters carry 71
// random bits, so codes cannot be guessed or enumerated.
const CodeLen = 12

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewCode returns a fresh random short code (crypto/rand, base62, no
// modulo bias).
func NewCode() string {
	out := make([]byte, 0, CodeLen)
	var buf [24]byte
	for len(out) < CodeLen {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			// 248 = 4 × 62: bytes at or above it would favour some letters.
			if b < 248 {
				out = append(out, base62[b%62])
				if len(out) == CodeLen {
					break
				}
			}
		}
	}
	return string(out)
}

// ValidCode reports whether s has the shape of a short code, so malformed
// paths are answered without a lookup.
func ValidCode(s string) bool {
	if len(s) != CodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
