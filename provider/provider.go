// Package provider holds the registry of messaging partners and the pieces
// every provider adapter shares. Each partner lives in a sub-package (sim,
// twilio, whatsapp, smpp) that implements switchboard.Provider.
package provider

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// Registry maps provider names to adapters.
type Registry struct {
	byName map[string]sb.Provider
}

// NewRegistry returns a registry holding the given providers.
func NewRegistry(ps ...sb.Provider) *Registry {
	r := &Registry{byName: map[string]sb.Provider{}}
	for _, p := range ps {
		r.byName[p.Name()] = p
	}
	return r
}

// Get returns the provider with the name, or a not_found error naming it.
func (r *Registry) Get(name string) (sb.Provider, error) {
	p, ok := r.byName[name]
	if !ok {
		return nil, sb.Errorf(sb.ENotFound, "unknown provider %q (known: %s)", name, strings.Join(r.Names(), ", "))
	}
	return p, nil
}

// Names returns the registered provider names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// MaxWebhookBytes is the largest webhook body accepted.
const MaxWebhookBytes = 1 << 20

// ReadWebhook turns an HTTP request into a WebhookRequest: it reads the body
// (at most MaxWebhookBytes, else a too_large error), parses form bodies, and
// rebuilds the URL the partner called from publicBase (the service's public
// origin, which signatures are computed over) and the request's path and
// query.
func ReadWebhook(r *http.Request, publicBase *url.URL, action string) (*sb.WebhookRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxWebhookBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, sb.Errorf(sb.ETooLarge, "webhook body is larger than %d bytes", MaxWebhookBytes)
		}
		return nil, sb.Errorf(sb.EInvalid, "webhook body could not be read")
	}
	u := *r.URL
	if publicBase != nil {
		u.Scheme = publicBase.Scheme
		u.Host = publicBase.Host
		u.Path = strings.TrimSuffix(publicBase.Path, "/") + r.URL.Path
		u.RawPath = ""
	} else {
		u.Scheme = "http"
		if r.TLS != nil {
			u.Scheme = "https"
		}
		u.Host = r.Host
	}
	req := &sb.WebhookRequest{Method: r.Method, URL: &u, Action: action, Header: r.Header.Clone(), Body: body, Form: url.Values{}}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, sb.Errorf(sb.EInvalid, "webhook form body is malformed: %v", err)
		}
		req.Form = form
	}
	return req, nil
}

// SendErrorf builds a *SendError.
func SendErrorf(kind sb.SendErrorKind, code, format string, args ...any) *sb.SendError {
	return &sb.SendError{Kind: kind, Code: code, Debug: fmt.Sprintf(format, args...)}
}

// ClassifyHTTPStatus maps a partner's HTTP status to a send error kind for
// answers that carry no more specific code.
func ClassifyHTTPStatus(status int) sb.SendErrorKind {
	switch {
	case status == http.StatusTooManyRequests:
		return sb.SendThrottled
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return sb.SendAuth
	case status == http.StatusRequestTimeout || status >= 500:
		return sb.SendTransient
	default:
		return sb.SendPermanent
	}
}
