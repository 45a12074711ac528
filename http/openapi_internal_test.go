package http

import (
	"strings"
	"testing"
)

// TestDuplicateKey: a key given twice in one object of an OpenAPI fragment
// is reported (encoding/json would keep the last one and lose the other);
// the same key in different objects is fine.
func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		doc  string
		want string // "" for no error
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{`{"responses":{"409":{"d":"x"},"404":{},"409":{"d":"y"}}}`, `key "409" appears twice`},
		{`{"a":[1,2,{"x":1,"x":2}]}`, `key "x" appears twice`},
		{`{"a":{"b":{}},"a":1}`, `key "a" appears twice`},
		{`["a","a",{"a":"a"}]`, ""},
		{`{"a":`, "unexpected EOF"},
	}
	for _, tt := range tests {
		err := duplicateKey([]byte(tt.doc))
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.doc, err, tt.want)
		}
	}
	for _, name := range []string{"base.json", "chat.json", "core.json", "crm.json", "forms.json", "links.json", "templates.json"} {
		if _, err := readFragment("openapi/" + name); err != nil {
			t.Errorf("fragment %s: %v", name, err)
		}
	}
}
