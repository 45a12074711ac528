package http

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"sort"
	"sync"
)

// The OpenAPI document is assembled from fragments in openapi/: base.json
// holds the document's head and shared components; each feature adds a
// fragment with its own paths and schemas.
//
//go:embed openapi/*.json
var openAPIFS embed.FS

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
)

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() ([]byte, error) {
	openAPIOnce.Do(func() { openAPIDoc, openAPIErr = buildOpenAPI() })
	return openAPIDoc, openAPIErr
}

func buildOpenAPI() ([]byte, error) {
	base, err := readFragment("openapi/base.json")
	if err != nil {
		return nil, err
	}
	paths := asMap(base["paths"])
	comps := asMap(base["components"])
	schemas := asMap(comps["schemas"])
	entries, _ := fs.ReadDir(openAPIFS, "openapi")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Name() != "base.json" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		frag, err := readFragment("openapi/" + n)
		if err != nil {
			return nil, err
		}
		for p, item := range asMap(frag["paths"]) {
			existing := asMap(paths[p])
			for method, op := range asMap(item) {
				if _, dup := existing[method]; dup {
					return nil, fmt.Errorf("openapi/%s: %s %s is defined twice", n, method, p)
				}
				existing[method] = op
			}
			paths[p] = existing
		}
		fc := asMap(frag["components"])
		maps.Copy(schemas, asMap(fc["schemas"]))
	}
	base["paths"] = paths
	comps["schemas"] = schemas
	base["components"] = comps
	return json.MarshalIndent(base, "", "  ")
}

func readFragment(name string) (map[string]any, error) {
	b, err := openAPIFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := duplicateKey(b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// duplicateKey reports an object of the JSON document that has a key twice
// (encoding/json keeps the last one silently, losing the other).
func duplicateKey(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys   map[string]bool // nil for an array
		expect bool            // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) > 0 {
			return io.ErrUnexpectedEOF
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, ok := tok.(string); ok && top != nil && top.keys != nil && top.expect {
			if top.keys[k] {
				return fmt.Errorf("key %q appears twice in one object (before offset %d)", k, dec.InputOffset())
			}
			top.keys[k], top.expect = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: an object's next token is a key.
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].expect = true
		}
	}
}

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}
