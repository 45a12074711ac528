// Package chat keeps the conversations a chat bot holds with website
// visitors and exports each one, when it closes, into the org's CRM: the
// visitor's contact is found by email and created or updated, and the
// transcript is added to it as a completed task.
//
// The conversation content (speaker names, message text, captured fields)
// is client data: it lives sealed in the chat_* tables and is deleted a
// retention period after a successful export; the export log stays. The
// export is a durable job (chat_export) inserted in the same transaction
// that closes the conversation; it retries CRM errors with back-off, waits
// while the CRM is offline, and never exports a conversation twice.
//
// Wiring: build a Service with New, pass its Workers to hub.QueueConfig as
// an extra, append its PeriodicJobs to the queue config, set it as the
// HTTP server's Chat, and give it the Salesforce client as Connector.
package chat

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat/rules"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// CRMs picks an org's CRM; hub.Hub's CRMs is one.
type CRMs interface {
	For(ctx context.Context, org *sb.Org) (sb.CRM, error)
}

// Connector connects an org's CRM with the JWT bearer flow; the Salesforce
// client (*salesforce.Client) is one.
type Connector interface {
	ConnectJWT(ctx context.Context, orgID string, s salesforce.JWTSettings) (*salesforce.Connection, error)
}

// Limits of conversations.
const (
	MaxMessages    = 5000
	MaxMessageLen  = 8000
	MaxSpeakerLen  = 100
	MaxInitialMsgs = 500
	// futureSlack is how far in the future a message time may be (clock
	// skew of the chat bot).
	futureSlack = 5 * time.Minute
)

// Service is the chat feature: the conversations API, the export settings,
// the export job and the content purge.
type Service struct {
	DB   *store.DB
	CRMs CRMs
	// Connector connects Salesforce orgs from the export settings (nil: the
	// connection settings are stored but not used).
	Connector Connector
	Log       *slog.Logger
	// HoldFor is how long an export waits before it looks again at a CRM
	// that is offline (default 5 minutes).
	HoldFor time.Duration
	// Backoff is the wait before retry number attempt (1, 2, …) after a
	// retryable CRM error (default: 30 s doubling to at most 1 h, jittered).
	Backoff func(attempt int) time.Duration
	// MaxAttempts bounds the attempts of one export round (default 10);
	// the round then fails and can be re-exported.
	MaxAttempts int
	// PurgeEvery is the interval of the content purge job (default 1 h).
	PurgeEvery time.Duration
	// Widget rate-limits the public widget API.
	Widget *RateLimiter
	// PublicURL is Switchboard's public origin, used in the widget's embed
	// snippet (nil: the snippet's script URL is relative).
	PublicURL *url.URL
}

// New returns a Service with defaults.
func New(db *store.DB, crms CRMs, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{DB: db, CRMs: crms, Log: log, HoldFor: 5 * time.Minute, Backoff: DefaultBackoff, MaxAttempts: 10,
		PurgeEvery: time.Hour, Widget: NewRateLimiter(WidgetRate, WidgetBurst)}
}

// DefaultBackoff waits 30 s before the first retry, doubling up to 1 h,
// with up to 20% jitter so that exports that failed together spread out.
func DefaultBackoff(attempt int) time.Duration {
	d := 30 * time.Second << min(max(attempt-1, 0), 7)
	d = min(d, time.Hour)
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// Workers registers the export and purge workers; pass it to
// hub.QueueConfig as an extra.
func (s *Service) Workers(w *river.Workers) {
	river.AddWorker(w, &ExportWorker{Service: s})
	river.AddWorker(w, &PurgeWorker{Service: s})
}

// PeriodicJobs returns the content purge job, to append to the queue
// config's PeriodicJobs.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	every := s.PurgeEvery
	if every <= 0 {
		every = time.Hour
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
			return PurgeArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: every}}
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// --- conversations API ---

// MessageRequest appends a message.
type MessageRequest struct {
	// Speaker is visitor, bot or agent.
	Speaker string `json:"speaker"`
	// Name is the speaker's name as the transcript shows it (default: the
	// visitor's captured name, "Bot", or the handling user's name).
	Name string `json:"name"`
	Text string `json:"text"`
	// At is when the message was written (default: now).
	At time.Time `json:"at,omitzero"`
}

// CreateRequest starts a conversation.
type CreateRequest struct {
	// UserID is the Switchboard user who handles the conversation.
	UserID   string            `json:"user_id"`
	Fields   map[string]string `json:"fields"`
	Messages []MessageRequest  `json:"messages"`
}

// UpdateRequest changes an open conversation: the handling user (when
// UserID is set; "" keeps it, "-" removes it) and captured fields (merged;
// "" removes a field).
type UpdateRequest struct {
	UserID *string           `json:"user_id"`
	Fields map[string]string `json:"fields"`
}

// ConversationView is a conversation with its content and latest export.
type ConversationView struct {
	*store.ChatConversation
	Fields   rules.Fields        `json:"fields"`
	Messages []store.ChatMessage `json:"messages"`
	// Export is the latest export round, once the conversation is closed.
	Export *store.ChatExport `json:"export,omitempty"`
}

// Conversation returns a conversation of the user's org with its content.
func (s *Service) Conversation(ctx context.Context, user *sb.User, id string) (*ConversationView, error) {
	c, err := s.DB.ChatConversation(ctx, user.OrgID, id)
	if err != nil {
		return nil, err
	}
	fields, msgs, err := s.DB.ChatContent(ctx, user.OrgID, id)
	if err != nil {
		return nil, err
	}
	v := &ConversationView{ChatConversation: c, Fields: fields, Messages: msgs}
	if v.Messages == nil {
		v.Messages = []store.ChatMessage{}
	}
	if c.Round > 0 {
		if v.Export, err = s.DB.ChatExportRound(ctx, user.OrgID, id, c.Round); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Conversations lists the org's conversations (without content), newest
// first.
func (s *Service) Conversations(ctx context.Context, user *sb.User, f store.ChatFilter) ([]*store.ChatConversation, error) {
	switch f.State {
	case "", store.ChatOpen, store.ChatPending, store.ChatHeld, store.ChatExported, store.ChatSkipped, store.ChatFailed:
	default:
		return nil, sb.FieldError("state", "state must be open, pending, held, exported, skipped or failed, not %q", rules.Clip(f.State, 20))
	}
	out, err := s.DB.ChatConversations(ctx, user.OrgID, f)
	if out == nil {
		out = []*store.ChatConversation{}
	}
	return out, err
}

func (s *Service) region(ctx context.Context, orgID string) string {
	if org, err := s.DB.Org(ctx, orgID); err == nil {
		return org.Settings.DefaultRegion
	}
	return "US"
}

func (s *Service) checkUser(ctx context.Context, orgID, userID string) error {
	if userID == "" {
		return nil
	}
	if _, err := s.DB.User(ctx, orgID, userID); err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return sb.FieldError("user_id", "user %s is not a user of this org", rules.Clip(userID, 40))
		}
		return err
	}
	return nil
}

// message checks a message request and returns the message to store.
func (s *Service) message(at string, req MessageRequest) (*store.ChatMessage, error) {
	m := &store.ChatMessage{Speaker: strings.ToLower(strings.TrimSpace(req.Speaker)), Name: strings.TrimSpace(req.Name), Text: req.Text, At: req.At.UTC()}
	switch m.Speaker {
	case rules.SpeakerVisitor, rules.SpeakerBot, rules.SpeakerAgent:
	case "":
		return nil, sb.FieldError(at+"speaker", "speaker is required: visitor, bot or agent")
	default:
		return nil, sb.FieldError(at+"speaker", "speaker must be visitor, bot or agent, not %q", rules.Clip(m.Speaker, 20))
	}
	switch {
	case !utf8.ValidString(m.Name) || !utf8.ValidString(m.Text):
		return nil, sb.FieldError(at+"text", "text and name must be valid UTF-8")
	case utf8.RuneCountInString(m.Name) > MaxSpeakerLen:
		return nil, sb.FieldError(at+"name", "name is longer than %d characters", MaxSpeakerLen)
	case strings.ContainsFunc(m.Name, func(r rune) bool { return r < 0x20 }):
		return nil, sb.FieldError(at+"name", "name must be one line")
	case strings.TrimSpace(m.Text) == "":
		return nil, sb.FieldError(at+"text", "text is required")
	case utf8.RuneCountInString(m.Text) > MaxMessageLen:
		return nil, sb.FieldError(at+"text", "text is longer than %d characters", MaxMessageLen)
	case strings.ContainsFunc(m.Text, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\r' && r != '\t' }):
		return nil, sb.FieldError(at+"text", "text must not contain control characters")
	}
	now := s.DB.Now()
	if m.At.IsZero() {
		m.At = now.UTC()
	} else if m.At.After(now.Add(futureSlack)) {
		return nil, sb.FieldError(at+"at", "at is in the future")
	}
	return m, nil
}

// CreateConversation starts a conversation in the user's org.
func (s *Service) CreateConversation(ctx context.Context, user *sb.User, req CreateRequest) (*ConversationView, error) {
	return s.create(ctx, user.OrgID, "api", req, nil)
}

func (s *Service) create(ctx context.Context, orgID, source string, req CreateRequest, visitorHash []byte) (*ConversationView, error) {
	req.UserID = strings.TrimSpace(req.UserID)
	if err := s.checkUser(ctx, orgID, req.UserID); err != nil {
		return nil, err
	}
	fields, err := rules.Fields{}.Merge(req.Fields, s.region(ctx, orgID))
	if err != nil {
		return nil, err
	}
	if len(req.Messages) > MaxInitialMsgs {
		return nil, sb.FieldError("messages", "at most %d messages may come with a new conversation; append the rest", MaxInitialMsgs)
	}
	msgs := make([]*store.ChatMessage, len(req.Messages))
	for i, mr := range req.Messages {
		if msgs[i], err = s.message("messages["+strconv.Itoa(i)+"].", mr); err != nil {
			return nil, err
		}
	}
	c := &store.ChatConversation{OrgID: orgID, UserID: req.UserID, Source: source}
	err = s.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateChatConversation(ctx, c, fields, visitorHash); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := tx.AddChatMessage(ctx, orgID, c.ID, m, MaxMessages); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Conversation(ctx, &sb.User{OrgID: orgID}, c.ID)
}

// AddMessage appends a message to an open conversation.
func (s *Service) AddMessage(ctx context.Context, user *sb.User, id string, req MessageRequest) (*store.ChatMessage, error) {
	m, err := s.message("", req)
	if err != nil {
		return nil, err
	}
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.AddChatMessage(ctx, user.OrgID, id, m, MaxMessages) }); err != nil {
		return nil, err
	}
	return m, nil
}

// UpdateConversation sets the handling user and captured fields of an
// open conversation.
func (s *Service) UpdateConversation(ctx context.Context, user *sb.User, id string, req UpdateRequest) (*ConversationView, error) {
	if req.UserID != nil && *req.UserID != "-" {
		if err := s.checkUser(ctx, user.OrgID, strings.TrimSpace(*req.UserID)); err != nil {
			return nil, err
		}
	}
	region := s.region(ctx, user.OrgID)
	err := s.DB.Tx(ctx, func(tx *store.Tx) error {
		c, fields, err := tx.LockChatConversation(ctx, user.OrgID, id)
		if err != nil {
			return err
		}
		if c.State != store.ChatOpen {
			return sb.Errorf(sb.EConflict, "chat conversation %s is closed (%s); it cannot be changed", id, c.State)
		}
		if req.UserID != nil {
			uid := strings.TrimSpace(*req.UserID)
			if uid == "-" {
				uid = ""
			}
			if err := tx.SetChatUser(ctx, user.OrgID, id, uid); err != nil {
				return err
			}
		}
		if len(req.Fields) > 0 {
			merged, err := rules.Fields(fields).Merge(req.Fields, region)
			if err != nil {
				return err
			}
			return tx.SetChatFields(ctx, user.OrgID, id, merged)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Conversation(ctx, user, id)
}

// Close closes a conversation and queues its export, in one transaction.
// Closing a closed conversation changes nothing (and queues nothing).
func (s *Service) Close(ctx context.Context, user *sb.User, id string) (*ConversationView, error) {
	if err := s.close(ctx, user.OrgID, id, user.ID); err != nil {
		return nil, err
	}
	return s.Conversation(ctx, user, id)
}

func (s *Service) close(ctx context.Context, orgID, id, by string) error {
	return s.DB.Tx(ctx, func(tx *store.Tx) error {
		round, closed, err := tx.CloseChatConversation(ctx, orgID, id, by)
		if err != nil || !closed {
			return err
		}
		tx.AddJob(s.exportJob(orgID, id, round))
		return nil
	})
}

// Reexport starts a new export round of a conversation whose export was
// skipped or failed (System Admin), for example after the settings
// changed. An exported conversation is never exported again.
func (s *Service) Reexport(ctx context.Context, user *sb.User, id string) (*store.ChatExport, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	var round int
	err := s.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if round, err = tx.ReexportChat(ctx, user.OrgID, id, user.ID); err != nil {
			return err
		}
		tx.AddJob(s.exportJob(user.OrgID, id, round))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.DB.ChatExportRound(ctx, user.OrgID, id, round)
}

// ReexportSkipped starts a new export round of every conversation of the
// org whose export was skipped (System Admin), for example after the
// settings changed, and returns how many were started. A conversation whose
// content is gone is passed over.
func (s *Service) ReexportSkipped(ctx context.Context, user *sb.User) (int, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return 0, err
	}
	n := 0
	f := store.ChatFilter{State: store.ChatSkipped, Limit: 500}
	for {
		page, err := s.DB.ChatConversations(ctx, user.OrgID, f)
		if err != nil {
			return n, err
		}
		for _, c := range page {
			if c.PurgedAt != nil {
				continue
			}
			if _, err := s.Reexport(ctx, user, c.ID); err != nil {
				if sb.IsCode(err, sb.EConflict) {
					continue // re-exported meanwhile
				}
				return n, err
			}
			n++
		}
		if len(page) < f.Limit {
			return n, nil
		}
		f.Before = page[len(page)-1].CreatedAt
	}
}

// LatestExports returns the latest export round of each of the org's
// conversations named, by conversation id (conversations never closed have
// none).
func (s *Service) LatestExports(ctx context.Context, user *sb.User, ids []string) (map[string]*store.ChatExport, error) {
	return s.DB.LatestChatExports(ctx, user.OrgID, ids)
}

// Exports lists the org's export log, newest first.
func (s *Service) Exports(ctx context.Context, user *sb.User, f store.ChatExportFilter) ([]*store.ChatExport, error) {
	switch f.Status {
	case "", store.ChatPending, store.ChatRetrying, store.ChatHeld, store.ChatExported, store.ChatSkipped, store.ChatFailed:
	default:
		return nil, sb.FieldError("status", "status must be pending, retrying, held, exported, skipped or failed, not %q", rules.Clip(f.Status, 20))
	}
	out, err := s.DB.ChatExports(ctx, user.OrgID, f)
	if out == nil {
		out = []*store.ChatExport{}
	}
	return out, err
}
