package switchboard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Keyring seals secrets (provider credentials, OAuth tokens, message content
// in transit) with AES-256-GCM. It holds one current key that seals and any
// number of older keys that still open, so keys can be rotated: add a new
// key in front, and re-seal at leisure (Reseal).
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
}

// ParseKeyring reads "id:base64key[,id:base64key…]"; the first key is the
// current one. Keys are 32 random bytes.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{keys: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		id, b64, ok := strings.Cut(item, ":")
		if !ok || id == "" || len(id) > 32 {
			return nil, fmt.Errorf("encryption key %d: want id:base64key", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: not base64", id)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("encryption key %q: want 32 bytes, got %d", id, len(raw))
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("encryption key %q is listed twice", id)
		}
		k.keys[id] = aead
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
}

// NewKeySpec returns a fresh "id:base64key" entry for a keyring.
func NewKeySpec(id string) string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return id + ":" + base64.StdEncoding.EncodeToString(raw)
}

// ErrUnseal is returned when sealed data cannot be opened.
var ErrUnseal = errors.New("sealed data cannot be opened with any known key")

// Seal encrypts plaintext bound to context (for example "gateway:<id>"), so
// a sealed value copied to another row does not open.
func (k *Keyring) Seal(context string, plaintext []byte) []byte {
	aead := k.keys[k.current]
	out := make([]byte, 0, 2+len(k.current)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, 1, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(context))
}

// Open decrypts a value produced by Seal with the same context.
func (k *Keyring) Open(context string, sealed []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != 1 {
		return nil, ErrUnseal
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return nil, ErrUnseal
	}
	aead, ok := k.keys[string(sealed[2:2+n])]
	if !ok {
		return nil, ErrUnseal
	}
	rest := sealed[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUnseal
	}
	pt, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// NeedsReseal reports whether sealed was made with a key other than the
// current one.
func (k *Keyring) NeedsReseal(sealed []byte) bool {
	if len(sealed) < 2 {
		return true
	}
	n := int(sealed[1])
	return len(sealed) < 2+n || string(sealed[2:2+n]) != k.current
}

// Hasher computes the keyed hash that stands for a phone number in
// operational tables: HMAC-SHA256 under a server secret, so the number cannot
// be recovered from the table and equal numbers still match.
type Hasher struct{ key []byte }

// NewHasher returns a hasher with the given secret (at least 32 bytes).
func NewHasher(secret []byte) (*Hasher, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("hash secret must be at least 32 bytes, got %d", len(secret))
	}
	return &Hasher{key: append([]byte(nil), secret...)}, nil
}

// Phone returns the keyed hash of an E.164 number.
func (h *Hasher) Phone(e164 string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(e164))
	return m.Sum(nil)
}

// Request returns the keyed hash of an API request's canonical form (kind
// names the request, so equal bytes of two kinds differ): stored with an
// idempotency key, it tells a retry from a different request without
// keeping the request's number or text.
func (h *Hasher) Request(kind string, canonical []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("request:" + kind + "\x00"))
	m.Write(canonical)
	return m.Sum(nil)
}
