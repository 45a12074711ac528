package chat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat/rules"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// ExportArgs is the chat_export job: export one round of a conversation.
// The round makes a re-export a job of its own; the job's unique key (its
// args) keeps a round from being queued twice.
type ExportArgs struct {
	OrgID          string `json:"org_id"`
	ConversationID string `json:"conversation_id"`
	Round          int    `json:"round"`
}

// Kind implements river.JobArgs.
func (ExportArgs) Kind() string { return "chat_export" }

func (s *Service) exportJob(orgID, convID string, round int) (river.JobArgs, *river.InsertOpts) {
	return ExportArgs{OrgID: orgID, ConversationID: convID, Round: round}, &river.InsertOpts{
		Queue:       store.QueueCRM,
		MaxAttempts: max(s.MaxAttempts, 1),
		UniqueOpts:  river.UniqueOpts{ByArgs: true},
	}
}

// ExportWorker runs chat_export jobs.
type ExportWorker struct {
	river.WorkerDefaults[ExportArgs]
	Service *Service
}

// NextRetry spaces retries after retryable CRM errors by Service.Backoff.
func (w *ExportWorker) NextRetry(job *river.Job[ExportArgs]) time.Time {
	b := w.Service.Backoff
	if b == nil {
		b = DefaultBackoff
	}
	return time.Now().Add(b(job.Attempt))
}

// Work exports the conversation.
func (w *ExportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	return w.Service.runExport(ctx, job.Args, job.Attempt, job.MaxAttempts)
}

// PurgeArgs is the periodic chat_purge job.
type PurgeArgs struct{}

// Kind implements river.JobArgs.
func (PurgeArgs) Kind() string { return "chat_purge" }

// PurgeWorker runs chat_purge jobs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	Service *Service
}

// Work purges content past its retention.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	_, err := w.Service.Purge(ctx)
	return err
}

// Purge deletes the content of conversations exported longer ago than
// their org's retention, and returns how many were purged.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	n, err := s.DB.PurgeChatContent(ctx, s.DB.Now())
	if n > 0 {
		s.Log.Info("chat content purged", "conversations", n)
	}
	return n, err
}

// How a skipped round's reason starts in the export log.
const (
	reasonNotEnabled = "chat export is not enabled for this org"
	reasonFilter     = "export filter not met"
	reasonMissing    = "missing required field(s)"
	reasonNoEmail    = "no email was captured"
)

// Why an export round was skipped (SkipKind).
const (
	SkipNotEnabled    = "not_enabled"
	SkipFilteredOut   = "filtered_out"
	SkipMissingFields = "missing_fields"
)

// SkipKind tells why a skipped round was skipped: SkipNotEnabled,
// SkipFilteredOut or SkipMissingFields ("" when the round was not skipped).
func SkipKind(e *store.ChatExport) string {
	if e == nil || e.Status != store.ChatSkipped {
		return ""
	}
	switch {
	case strings.HasPrefix(e.Reason, reasonNotEnabled):
		return SkipNotEnabled
	case strings.HasPrefix(e.Reason, reasonFilter):
		return SkipFilteredOut
	}
	return SkipMissingFields
}

// outcome is how an export run ended: recorded in the log, then told to
// River (retry, snooze or done).
type outcome struct {
	rec store.ChatExportOutcome
	// retry is the error to retry after; hold and snooze wait without
	// using an attempt.
	retry  error
	hold   bool
	snooze time.Duration
}

func (s *Service) runExport(ctx context.Context, a ExportArgs, attempt, maxAttempts int) error {
	conv, err := s.DB.ChatConversation(ctx, a.OrgID, a.ConversationID)
	if sb.IsCode(err, sb.ENotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if conv.Round != a.Round || (conv.State != store.ChatPending && conv.State != store.ChatHeld) {
		return nil // a later round took over, or this round is finished
	}
	org, err := s.DB.Org(ctx, a.OrgID)
	if sb.IsCode(err, sb.ENotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	o := s.export(ctx, org, conv)
	o.rec.OrgID, o.rec.ConversationID, o.rec.Round = a.OrgID, a.ConversationID, a.Round
	if o.retry != nil && attempt >= maxAttempts {
		o.rec.Status = store.ChatFailed
		o.rec.Reason = fmt.Sprintf("gave up after %d attempts: %s", attempt, o.rec.Reason)
		o.retry = nil
	}
	// The outcome is recorded even when the job's context ended meanwhile.
	wctx := context.WithoutCancel(ctx)
	recorded := false
	err = s.DB.Tx(wctx, func(tx *store.Tx) error {
		var err error
		recorded, err = tx.FinishChatExport(wctx, o.rec)
		return err
	})
	if err != nil {
		return err
	}
	if !recorded {
		return nil
	}
	log := s.Log.With("org", a.OrgID, "conversation", a.ConversationID, "round", a.Round)
	switch {
	case o.hold:
		log.Warn("chat export held: the CRM is offline", "reason", o.rec.Reason)
		return river.JobSnooze(cmp.Or(s.HoldFor, 5*time.Minute))
	case o.snooze > 0:
		return river.JobSnooze(o.snooze)
	case o.retry != nil:
		log.Warn("chat export will be retried", "attempt", attempt, "reason", o.rec.Reason)
		return o.retry
	}
	log.Info("chat export finished", "status", o.rec.Status, "reason", o.rec.Reason)
	return nil
}

// export runs one attempt of an export round.
func (s *Service) export(ctx context.Context, org *sb.Org, conv *store.ChatConversation) outcome {
	skip := func(format string, args ...any) outcome {
		return outcome{rec: store.ChatExportOutcome{Status: store.ChatSkipped, Reason: fmt.Sprintf(format, args...), Attempted: true}}
	}
	st, _, err := s.loadSettings(ctx, org.ID)
	if err != nil {
		return s.failure(err, nil)
	}
	if !st.Enabled {
		return skip("%s (see the export settings)", reasonNotEnabled)
	}
	if conv.PurgedAt != nil {
		return outcome{rec: store.ChatExportOutcome{Status: store.ChatFailed, Reason: "the conversation's content was deleted", Attempted: true}}
	}
	raw, msgs, err := s.DB.ChatContent(ctx, org.ID, conv.ID)
	if err != nil {
		return s.failure(err, nil)
	}
	fields := rules.Fields(raw)
	filter, err := rules.ParseFilter(st.Filter)
	if err != nil {
		return outcome{rec: store.ChatExportOutcome{Status: store.ChatFailed, Reason: sb.ErrorMessage(err), Attempted: true}}
	}
	if why := filter.Explain(fields); why != "" {
		return skip("%s: %s", reasonFilter, why)
	}
	if missing := st.missing(fields); len(missing) > 0 {
		return skip("%s: %s", reasonMissing, strings.Join(missing, ", "))
	}
	email := fields.Get(rules.FieldEmail)
	if email == "" {
		return skip("%s: the export finds the contact by email", reasonNoEmail)
	}
	crm, err := s.CRMs.For(ctx, org)
	if err != nil {
		return s.failure(err, nil)
	}
	matches, err := crm.FindContactsByEmail(ctx, org, email)
	if err != nil {
		return s.failure(err, nil)
	}
	salesforceIDs := org.Settings.CRM == sb.CRMSalesforce
	contact, action, notes := buildContact(matches, fields, &st)
	var handler *sb.User
	if conv.UserID != "" {
		if u, err := s.DB.User(ctx, org.ID, conv.UserID); err == nil {
			handler = u
		}
	}
	owner, ownerNote := taskOwner(&st, contact, action, handler, salesforceIDs)
	notes = append(notes, ownerNote)
	loc := st.location()
	closed := conv.UpdatedAt
	if conv.ClosedAt != nil {
		closed = *conv.ClosedAt
	}
	lines := make([]rules.Message, len(msgs))
	for i, m := range msgs {
		lines[i] = rules.Message{Speaker: m.Speaker, Name: m.Name, Text: m.Text, At: m.At}
	}
	in := rules.TranscriptInput{ConversationID: conv.ID, Fields: fields, Messages: lines, Started: conv.CreatedAt, Closed: closed, Location: loc}
	if handler != nil {
		in.HandledBy = handler.Name
	}
	parts := rules.SplitTranscript(rules.RenderTranscript(in), rules.DescriptionLimit, rules.MaxParts)
	if len(parts) > 1 {
		notes = append(notes, fmt.Sprintf("the transcript was split into %d tasks of at most %d characters", len(parts), rules.DescriptionLimit))
	}
	if parts[len(parts)-1].Truncated > 0 {
		notes = append(notes, fmt.Sprintf("the transcript was truncated: %d characters did not fit in %d tasks", parts[len(parts)-1].Truncated, rules.MaxParts))
	}
	date := closed.In(loc).Format("2006-01-02")
	progress := &store.ChatExportOutcome{ContactAction: action}
	for _, p := range parts {
		task := &sb.CRMTask{
			Subject:      p.Subject(date),
			Status:       "Completed",
			ActivityDate: date,
			OwnerID:      owner,
			Description:  p.Description(),
			ExternalID:   fmt.Sprintf("%s-%d", conv.ID, p.N),
		}
		cid, tid, err := crm.SaveContactAndTask(ctx, org, contact, task)
		if err != nil {
			return s.failure(err, progress)
		}
		contact.ID = cid
		progress.ContactID = cid
		progress.TaskIDs = append(progress.TaskIDs, tid)
	}
	rec := *progress
	rec.Status = store.ChatExported
	rec.Attempted = true
	rec.Note = strings.Join(slices.DeleteFunc(notes, func(n string) bool { return n == "" }), "; ")
	rec.PurgeAfter = s.DB.Now().Add(time.Duration(st.RetentionDays) * 24 * time.Hour)
	return outcome{rec: rec}
}

// failure classifies an error of an export attempt: an offline CRM holds
// the export; retryable CRM errors, unavailable dependencies and
// unexpected errors retry; anything else (the CRM refused the data, bad
// settings) fails the round with the reason.
func (s *Service) failure(err error, progress *store.ChatExportOutcome) outcome {
	o := outcome{}
	if progress != nil {
		o.rec = *progress
	}
	o.rec.Attempted = true
	o.rec.Reason = safeReason(err)
	var ce *sb.CRMError
	switch {
	case errors.As(err, &ce) && ce.Offline:
		o.rec.Status, o.rec.Attempted, o.hold = store.ChatHeld, false, true
		o.rec.Reason = "the CRM is offline; the export waits until it is connected again: " + o.rec.Reason
	case errors.As(err, &ce) && ce.RetryAfter > 0:
		o.rec.Status, o.snooze = store.ChatRetrying, ce.RetryAfter
	case errors.As(err, &ce) && ce.Retryable:
		o.rec.Status, o.retry = store.ChatRetrying, err
	case errors.As(err, &ce):
		o.rec.Status = store.ChatFailed
		o.rec.Reason = "the CRM refused the export: " + o.rec.Reason
	case sb.IsCode(err, sb.EInvalid), sb.IsCode(err, sb.EForbidden), sb.IsCode(err, sb.EConflict):
		o.rec.Status = store.ChatFailed
	default:
		// EUnavailable, ENotFound (a contact deleted meanwhile: look again),
		// database and network errors.
		o.rec.Status, o.retry = store.ChatRetrying, err
	}
	return o
}

var (
	emailLikeRE = regexp.MustCompile(`[^\s@'"<>(),;:\[\]]+@[^\s@'"<>(),;:\[\]]+`)
	phoneLikeRE = regexp.MustCompile(`\+?\d[\d\s().-]{5,}\d`)
)

// safeReason returns an error's text for the export log, which is an
// operational table: email addresses and phone-like numbers a CRM may echo
// are masked, and the text is bounded.
func safeReason(err error) string {
	var msg string
	var ce *sb.CRMError
	switch {
	case errors.As(err, &ce):
		msg = ce.Error()
		msg = strings.TrimPrefix(msg, "crm: ")
	case sb.ErrorCode(err) == sb.EInternal:
		msg = "internal error"
	default:
		msg = sb.ErrorMessage(err)
	}
	msg = emailLikeRE.ReplaceAllString(msg, "<email>")
	msg = phoneLikeRE.ReplaceAllStringFunc(msg, func(m string) string {
		digits := 0
		for _, r := range m {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if digits < 7 {
			return m
		}
		return "<phone>"
	})
	return rules.Clip(msg, 500)
}

// buildContact chooses and fills the contact to save. Zero matches: a new
// contact from the captured fields, owned by the default owner. One: that
// contact. Several: the one created first (the oldest record usually
// carries the history; later ones are mostly duplicates). An existing
// contact keeps its names and phone when it has them (only blanks are
// filled) and gets the mapped custom fields.
func buildContact(matches []sb.CRMRecord, f rules.Fields, st *Settings) (*sb.CRMRecord, string, []string) {
	mapped := map[string]string{}
	for name, target := range st.FieldMapping {
		if v := f.Get(name); v != "" {
			mapped[target] = v
		}
	}
	if len(matches) == 0 {
		c := &sb.CRMRecord{Type: "Contact", FirstName: f.Get(rules.FieldFirstName), LastName: f.Get(rules.FieldLastName), Email: f.Get(rules.FieldEmail),
			Phone: f.Get(rules.FieldPhone), OwnerID: st.DefaultOwnerID, Fields: mapped}
		return c, "created", []string{"no contact had the email; a new contact was created"}
	}
	var notes []string
	pick := matches[0]
	if len(matches) > 1 {
		sorted := slices.Clone(matches)
		slices.SortStableFunc(sorted, func(a, b sb.CRMRecord) int {
			switch {
			case a.CreatedAt.IsZero() != b.CreatedAt.IsZero():
				if a.CreatedAt.IsZero() {
					return 1
				}
				return -1
			case !a.CreatedAt.Equal(b.CreatedAt):
				return a.CreatedAt.Compare(b.CreatedAt)
			}
			return strings.Compare(a.ID, b.ID)
		})
		pick = sorted[0]
		notes = append(notes, fmt.Sprintf("%d contacts have the email; the one created first (%s) was updated", len(matches), pick.ID))
	} else {
		notes = append(notes, "one contact had the email and was updated")
	}
	c := pick
	c.Fields = maps.Clone(pick.Fields)
	if c.Fields == nil {
		c.Fields = map[string]string{}
	}
	fill := func(dst *string, v string) {
		if strings.TrimSpace(*dst) == "" {
			*dst = v
		}
	}
	fill(&c.FirstName, f.Get(rules.FieldFirstName))
	fill(&c.LastName, f.Get(rules.FieldLastName))
	fill(&c.Phone, f.Get(rules.FieldPhone))
	maps.Copy(c.Fields, mapped)
	return &c, "updated", notes
}

// taskOwner applies the user assignment rule and says what it did.
func taskOwner(st *Settings, contact *sb.CRMRecord, action string, handler *sb.User, salesforceIDs bool) (string, string) {
	fallback := func(why string) (string, string) {
		if st.DefaultOwnerID != "" {
			return st.DefaultOwnerID, why + "; the task was assigned to the default owner"
		}
		return "", why + "; the task was left to the CRM's default owner"
	}
	if st.UserAssignment == AssignChatUser {
		if handler == nil {
			return fallback("no chat user handled the conversation")
		}
		id := handler.CRMID()
		if salesforceIDs && !(salesforce.ValidID(id) && strings.HasPrefix(id, "005")) {
			return fallback(fmt.Sprintf("chat user %s has no Salesforce user id (crm_user_id)", handler.ID))
		}
		return id, fmt.Sprintf("the task was assigned to chat user %s", handler.ID)
	}
	if action == "updated" && contact.OwnerID != "" {
		return contact.OwnerID, "the task was assigned to the contact's owner"
	}
	if action == "created" && contact.OwnerID != "" {
		return contact.OwnerID, "the task was assigned to the new contact's owner (the default owner)"
	}
	return fallback("the contact has no owner")
}
