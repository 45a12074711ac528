package http

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestChatRoutesDocumented checks every chat route is in the OpenAPI
// document and every reference of the chat fragment resolves.
func TestChatRoutesDocumented(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components map[string]map[string]any `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	routes := append(s.chatRoutes(), s.chatWidgetRoutes()...)
	for _, r := range routes {
		path := strings.ReplaceAll(r.Pattern, "...}", "}")
		if _, ok := d.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is not in the OpenAPI document", r.Method, r.Pattern)
		}
	}
	frag, err := openAPIFS.ReadFile("openapi/chat.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(frag), -1) {
		if _, ok := d.Components[m[1]][m[2]]; !ok {
			t.Errorf("reference %s/%s does not resolve", m[1], m[2])
		}
	}
}
