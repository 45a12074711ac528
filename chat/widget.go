package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"html/template"
	"io"
	"regexp"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat/rules"
	"github.com/switchboard/switchboard/store"
)

// The embeddable web chat widget: a small script (widget.js) that a
// website includes with the org's public widget token. Visitors start a
// conversation with that token and get a visitor token of their own, which
// alone lets them read and write that one conversation. The chat bot or
// agents answer through the API-key API; the widget polls for answers.

//go:embed widget/widget.js widget/demo.html
var widgetFS embed.FS

// WidgetJS returns the widget script.
func WidgetJS() []byte {
	b, _ := widgetFS.ReadFile("widget/widget.js")
	return b
}

var demoPage = template.Must(template.ParseFS(widgetFS, "widget/demo.html"))

var widgetTokenRE = regexp.MustCompile(`^cw_[a-z2-7]{32}$`)

// RenderDemo writes the widget's demo page; token "" shows how to get one.
func RenderDemo(w io.Writer, token string) error {
	if !widgetTokenRE.MatchString(token) {
		token = ""
	}
	return demoPage.Execute(w, map[string]string{"Token": token})
}

func newSecret(prefix string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func secretHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// WidgetToken is a new public widget token, shown once.
type WidgetToken struct {
	Token string `json:"token"`
	// Embed is the HTML that puts the widget on a page (its script URL is
	// relative unless Service.PublicURL is set).
	Embed string `json:"embed"`
	Note  string `json:"note"`
}

// RotateWidgetToken makes a new public widget token for the user's org
// (System Admin); the previous one stops working.
func (s *Service) RotateWidgetToken(ctx context.Context, user *sb.User) (*WidgetToken, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	tok := newSecret("cw_")
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SetChatWidgetToken(ctx, user.OrgID, secretHash(tok), user.ID) }); err != nil {
		return nil, err
	}
	src := "/chat/widget.js"
	if s.PublicURL != nil {
		src = s.PublicURL.JoinPath("chat", "widget.js").String()
	}
	return &WidgetToken{
		Token: tok,
		Embed: `<script src="` + template.HTMLEscapeString(src) + `" data-token="` + tok + `" defer></script>`,
		Note:  "the token is shown once; it is public (it goes into your web pages) and only starts chat conversations",
	}, nil
}

// DisableWidget removes the org's widget token (System Admin).
func (s *Service) DisableWidget(ctx context.Context, user *sb.User) error {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SetChatWidgetToken(ctx, user.OrgID, nil, user.ID) })
}

// AllowWidget applies the widget rate limit to a request of a widget
// token from a client address.
func (s *Service) AllowWidget(token, client string) bool {
	if s.Widget == nil {
		return true
	}
	h := secretHash(token)
	return s.Widget.Allow(string(h[:8]) + "|" + client)
}

var errWidgetToken = sb.Errorf(sb.EUnauthorized, "the chat widget token is missing or not valid")

// widgetOrg returns the org of a widget token.
func (s *Service) widgetOrg(ctx context.Context, token string) (string, error) {
	if !widgetTokenRE.MatchString(token) {
		return "", errWidgetToken
	}
	org, err := s.DB.ChatOrgByWidgetToken(ctx, secretHash(token))
	if err != nil {
		return "", err
	}
	if org == "" {
		return "", errWidgetToken
	}
	return org, nil
}

// visitor checks a visitor token for a conversation and returns the org.
func (s *Service) visitor(ctx context.Context, token, id, visitorToken string) (string, error) {
	org, err := s.widgetOrg(ctx, token)
	if err != nil {
		return "", err
	}
	ok, err := s.DB.ChatVisitorAllowed(ctx, org, id, secretHash(visitorToken))
	if err != nil {
		return "", err
	}
	if !ok || visitorToken == "" {
		// Whether the conversation exists is not told.
		return "", sb.Errorf(sb.ENotFound, "chat conversation %s not found", rules.Clip(id, 40))
	}
	return org, nil
}

// WidgetSession is a conversation a visitor started.
type WidgetSession struct {
	ConversationID string `json:"conversation_id"`
	// VisitorToken lets the visitor read and write the conversation.
	VisitorToken string `json:"visitor_token"`
}

// WidgetStart starts a conversation for a visitor, with the fields the
// visitor entered (name, email, …).
func (s *Service) WidgetStart(ctx context.Context, token string, fields map[string]string) (*WidgetSession, error) {
	org, err := s.widgetOrg(ctx, token)
	if err != nil {
		return nil, err
	}
	vt := newSecret("cv_")
	v, err := s.create(ctx, org, "widget", CreateRequest{Fields: fields}, secretHash(vt))
	if err != nil {
		return nil, err
	}
	return &WidgetSession{ConversationID: v.ID, VisitorToken: vt}, nil
}

// WidgetMessages is what a visitor polls: messages after a sequence number
// and the conversation's state.
type WidgetMessages struct {
	State    string       `json:"state"`
	Messages []WidgetLine `json:"messages"`
}

// WidgetLine is a message as the widget shows it.
type WidgetLine struct {
	Seq     int    `json:"seq"`
	Speaker string `json:"speaker"`
	Name    string `json:"name,omitempty"`
	Text    string `json:"text"`
	At      string `json:"at"`
}

// WidgetPoll returns the messages after seq of a visitor's conversation.
func (s *Service) WidgetPoll(ctx context.Context, token, id, visitorToken string, after int) (*WidgetMessages, error) {
	org, err := s.visitor(ctx, token, id, visitorToken)
	if err != nil {
		return nil, err
	}
	c, err := s.DB.ChatConversation(ctx, org, id)
	if err != nil {
		return nil, err
	}
	msgs, err := s.DB.ChatMessagesAfter(ctx, org, id, after, 200)
	if err != nil {
		return nil, err
	}
	out := &WidgetMessages{State: c.State, Messages: make([]WidgetLine, len(msgs))}
	for i, m := range msgs {
		out.Messages[i] = WidgetLine{Seq: m.Seq, Speaker: m.Speaker, Name: m.Name, Text: m.Text, At: m.At.Format("2006-01-02T15:04:05Z07:00")}
	}
	return out, nil
}

// WidgetSay adds a visitor's message.
func (s *Service) WidgetSay(ctx context.Context, token, id, visitorToken, text string) (*store.ChatMessage, error) {
	org, err := s.visitor(ctx, token, id, visitorToken)
	if err != nil {
		return nil, err
	}
	return s.AddMessage(ctx, &sb.User{OrgID: org}, id, MessageRequest{Speaker: rules.SpeakerVisitor, Text: text})
}

// WidgetFields sets fields the visitor entered (merged; "" removes).
func (s *Service) WidgetFields(ctx context.Context, token, id, visitorToken string, fields map[string]string) error {
	org, err := s.visitor(ctx, token, id, visitorToken)
	if err != nil {
		return err
	}
	_, err = s.UpdateConversation(ctx, &sb.User{OrgID: org}, id, UpdateRequest{Fields: fields})
	return err
}

// WidgetClose ends a visitor's conversation (and queues its export).
func (s *Service) WidgetClose(ctx context.Context, token, id, visitorToken string) error {
	org, err := s.visitor(ctx, token, id, visitorToken)
	if err != nil {
		return err
	}
	return s.close(ctx, org, id, "widget")
}
