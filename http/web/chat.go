package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/chat/rules"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/store"
)

// The chat export pages (System Admin): the export settings — the CRM
// connection, owner and assignment, field mapping, filter and required
// fields — and the export log of the chat bot's conversations, with
// re-export. Both use the chat service, as the API does.

// chatLogLimit is how many conversations the export log lists at once.
const chatLogLimit = 100

// skippedCounted bounds the skipped conversations the log counts.
const skippedCounted = 500

// mappingRows is how many empty field mapping rows the form offers.
const mappingRows = 3

// maxKeyUpload bounds the private key file read from the form.
const maxKeyUpload = 64 << 10

// chatService returns the chat service, or fails the request when the
// server has none.
func (u *UI) chatService(w http.ResponseWriter, r *http.Request, rc *reqCtx) (*chat.Service, bool) {
	if u.d.Chat == nil {
		u.fail(w, r, rc, sb.Errorf(sb.EUnavailable, "chat is not enabled on this server"))
		return nil, false
	}
	return u.d.Chat, true
}

// --- settings ---

type mappingRow struct {
	Captured, CRMField string
}

// chatSettingsForm holds the settings form's values (kept when it is shown
// again with an error).
type chatSettingsForm struct {
	Enabled                         bool
	InstanceURL, ClientID, Username string
	DefaultOwnerID, UserAssignment  string
	// Required ticks the standard fields; OtherRequired lists the custom
	// ones, comma-separated.
	Required      map[string]bool
	OtherRequired string
	Mapping       []mappingRow
	Filter        string
	RetentionDays string
	TimeZone      string
}

type requiredField struct {
	Key, Label string
	// Always: email is always required (contacts are found by it).
	Always bool
}

var chatRequiredChoices = []requiredField{
	{rules.FieldFirstName, "First name", false},
	{rules.FieldLastName, "Last name", false},
	{rules.FieldEmail, "Email (always: contacts are found by email)", true},
	{rules.FieldPhone, "Phone", false},
}

type chatSettingsData struct {
	Form          chatSettingsForm
	View          *chat.SettingsView
	Choices       []requiredField
	Salesforce    bool
	WidgetEnabled bool
	// Invalid names the setting an error is about (its field gets
	// aria-invalid).
	Invalid string
	Error   string
	Notice  string
}

func settingsForm(v *chat.SettingsView) chatSettingsForm {
	f := chatSettingsForm{Enabled: v.Enabled, InstanceURL: v.InstanceURL, ClientID: v.ClientID, Username: v.Username,
		DefaultOwnerID: v.DefaultOwnerID, UserAssignment: v.UserAssignment, Required: map[string]bool{}, Filter: v.Filter,
		RetentionDays: strconv.Itoa(v.RetentionDays), TimeZone: v.TimeZone}
	var other []string
	for _, n := range v.RequiredFields {
		if rules.IsStandard(n) {
			f.Required[n] = true
		} else {
			other = append(other, n)
		}
	}
	f.OtherRequired = strings.Join(other, ", ")
	names := make([]string, 0, len(v.FieldMapping))
	for n := range v.FieldMapping {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f.Mapping = append(f.Mapping, mappingRow{n, v.FieldMapping[n]})
	}
	return f
}

func (u *UI) chatSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	svc, ok := u.chatService(w, r, rc)
	if !ok {
		return
	}
	v, err := svc.Settings(r.Context(), rc.User)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderChatSettings(w, r, rc, http.StatusOK, chatSettingsData{Form: settingsForm(v), View: v})
}

func (u *UI) renderChatSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, d chatSettingsData) {
	d.Choices = chatRequiredChoices
	d.Salesforce = rc.Org.Settings.CRM == sb.CRMSalesforce
	if d.View != nil {
		d.WidgetEnabled = d.View.WidgetEnabled
	}
	for countBlank(d.Form.Mapping) < mappingRows {
		d.Form.Mapping = append(d.Form.Mapping, mappingRow{})
	}
	p := u.newPage(r, rc, "chat", "Chat export settings", d)
	u.render(w, status, "chat_settings", p)
}

func countBlank(rows []mappingRow) int {
	n := 0
	for _, m := range rows {
		if m == (mappingRow{}) {
			n++
		}
	}
	return n
}

// readChatSettings reads the posted settings form into a request. The
// private key comes as an uploaded file; none uploaded keeps the stored
// one, "remove" deletes it.
func readChatSettings(r *http.Request) (chatSettingsForm, chat.SettingsRequest, error) {
	f := chatSettingsForm{
		Enabled: r.PostFormValue("enabled") == "on", InstanceURL: strings.TrimSpace(r.PostFormValue("instance_url")),
		ClientID: strings.TrimSpace(r.PostFormValue("client_id")), Username: strings.TrimSpace(r.PostFormValue("username")),
		DefaultOwnerID: strings.TrimSpace(r.PostFormValue("default_owner_id")), UserAssignment: r.PostFormValue("user_assignment"),
		Required: map[string]bool{}, OtherRequired: r.PostFormValue("required_other"), Filter: r.PostFormValue("filter"),
		RetentionDays: strings.TrimSpace(r.PostFormValue("retention_days")), TimeZone: strings.TrimSpace(r.PostFormValue("time_zone")),
	}
	req := chat.SettingsRequest{Enabled: f.Enabled, InstanceURL: f.InstanceURL, ClientID: f.ClientID, Username: f.Username,
		DefaultOwnerID: f.DefaultOwnerID, UserAssignment: f.UserAssignment, Filter: f.Filter, TimeZone: f.TimeZone,
		FieldMapping: map[string]string{}, Reconnect: r.PostFormValue("reconnect") == "on"}
	req.RequiredFields = []string{}
	for _, c := range chatRequiredChoices {
		if c.Always || r.PostFormValue("required_"+c.Key) == "on" {
			f.Required[c.Key] = true
			req.RequiredFields = append(req.RequiredFields, c.Key)
		}
	}
	req.RequiredFields = append(req.RequiredFields, splitKeywords(f.OtherRequired)...)
	captured, targets := r.PostForm["map_captured"], r.PostForm["map_crm"]
	for i := range captured {
		row := mappingRow{Captured: strings.TrimSpace(captured[i])}
		if i < len(targets) {
			row.CRMField = strings.TrimSpace(targets[i])
		}
		if row == (mappingRow{}) {
			continue
		}
		f.Mapping = append(f.Mapping, row)
		if row.Captured == "" {
			return f, req, sb.FieldError("field_mapping", "a mapping to %s names no captured field", rules.Clip(row.CRMField, 40))
		}
		if _, dup := req.FieldMapping[row.Captured]; dup {
			return f, req, sb.FieldError("field_mapping."+row.Captured, "captured field %q is mapped twice", rules.Clip(row.Captured, 40))
		}
		req.FieldMapping[row.Captured] = row.CRMField
	}
	if f.RetentionDays != "" {
		n, err := strconv.Atoi(f.RetentionDays)
		if err != nil {
			return f, req, sb.FieldError("retention_days", "retention_days must be a whole number of days")
		}
		req.RetentionDays = &n
	}
	if r.PostFormValue("remove_key") == "on" {
		empty := ""
		req.PrivateKey = &empty
	} else if r.MultipartForm != nil && len(r.MultipartForm.File["private_key"]) > 0 {
		fh := r.MultipartForm.File["private_key"][0]
		if fh.Size > 0 {
			file, err := fh.Open()
			if err != nil {
				return f, req, sb.FieldError("private_key", "the private key file could not be read")
			}
			defer file.Close()
			b, err := io.ReadAll(io.LimitReader(file, maxKeyUpload+1))
			if err != nil || len(b) > maxKeyUpload {
				return f, req, sb.FieldError("private_key", "the private key file could not be read or is larger than %d KB", maxKeyUpload>>10)
			}
			key := string(b)
			req.PrivateKey = &key
		}
	}
	return f, req, nil
}

func (u *UI) saveChatSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	svc, ok := u.chatService(w, r, rc)
	if !ok {
		return
	}
	f, req, err := readChatSettings(r)
	var v *chat.SettingsView
	if err == nil {
		v, err = svc.PutSettings(r.Context(), rc.User, req)
	}
	if err != nil {
		status := sbhttp.StatusOf(sb.ErrorCode(err))
		if status >= 500 {
			u.d.Log.Error("ui chat settings failed", "err", err)
		}
		d := chatSettingsData{Form: f, Error: sb.ErrorMessage(err), Invalid: errorField(err)}
		if d.View, err = svc.Settings(r.Context(), rc.User); err != nil {
			u.fail(w, r, rc, err)
			return
		}
		u.renderChatSettings(w, r, rc, status, d)
		return
	}
	notice := "Chat export settings saved."
	if c := v.Connection; c != nil && c.Connected {
		notice += fmt.Sprintf(" Salesforce connected as %s (user %s) on %s.", c.Username, c.UserID, c.InstanceURL)
	}
	u.renderChatSettings(w, r, rc, http.StatusOK, chatSettingsData{Form: settingsForm(v), View: v, Notice: notice})
}

// errorField returns the setting an error names, as the form's field name.
func errorField(err error) string {
	var e *sb.Error
	if !errors.As(err, &e) || e.Field == "" {
		return ""
	}
	field, _, _ := strings.Cut(e.Field, ".")
	if strings.HasPrefix(field, "required_fields") {
		return "required_fields"
	}
	return field
}

// --- export log ---

// chatLogRow is one conversation of the export log.
type chatLogRow struct {
	*store.ChatConversation
	Export *store.ChatExport
	// State is what the log shows: Open, Exported, Skipped: missing fields,
	// Skipped: filtered out, Skipped: export off, Failed, Exporting,
	// Retrying, Waiting for the CRM.
	State, StateKey string
	Reason          string
	Handler         string
	CanReexport     bool
}

type chatLogData struct {
	Filter  string
	Filters []chatFilterTab
	Rows    []chatLogRow
	More    bool
	Next    string
	Skipped int
	// SkippedMore: there are more skipped conversations than counted.
	SkippedMore bool
	Error       string
	Notice      string
}

type chatFilterTab struct{ Key, Label string }

var chatFilters = []chatFilterTab{
	{"", "All"}, {store.ChatExported, "Exported"}, {store.ChatSkipped, "Skipped"}, {store.ChatFailed, "Failed"},
	{store.ChatPending, "Exporting"}, {store.ChatHeld, "Waiting for the CRM"}, {store.ChatOpen, "Open"},
}

func (u *UI) chatExports(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	u.renderChatLog(w, r, rc, http.StatusOK, "", "")
}

func (u *UI) renderChatLog(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, notice, errMsg string) {
	svc, ok := u.chatService(w, r, rc)
	if !ok {
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := chatLogData{Filter: q.Get("state"), Filters: chatFilters, Notice: notice, Error: errMsg}
	f := store.ChatFilter{State: d.Filter, Limit: chatLogLimit + 1}
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			u.fail(w, r, rc, sb.FieldError("before", "before must be an RFC 3339 time"))
			return
		}
		f.Before = t
	}
	convs, err := svc.Conversations(ctx, rc.User, f)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	if len(convs) > chatLogLimit {
		convs, d.More = convs[:chatLogLimit], true
		d.Next = convs[len(convs)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	exports, err := svc.LatestExports(ctx, rc.User, ids)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	users, err := u.userNames(ctx, rc.Org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	for _, c := range convs {
		row := chatLogRow{ChatConversation: c, Export: exports[c.ID], Handler: users[c.UserID]}
		row.State, row.StateKey, row.Reason = describeExport(c, row.Export)
		row.CanReexport = (c.State == store.ChatSkipped || c.State == store.ChatFailed) && c.PurgedAt == nil
		d.Rows = append(d.Rows, row)
	}
	skipped, err := svc.Conversations(ctx, rc.User, store.ChatFilter{State: store.ChatSkipped, Limit: skippedCounted + 1})
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	d.Skipped, d.SkippedMore = min(len(skipped), skippedCounted), len(skipped) > skippedCounted
	u.render(w, status, "chat_exports", u.newPage(r, rc, "chat", "Chat export log", d))
}

// describeExport says where a conversation's export stands and why.
func describeExport(c *store.ChatConversation, e *store.ChatExport) (state, key, reason string) {
	if e != nil {
		reason = e.Reason
		if reason == "" {
			reason = e.Note
		}
	}
	switch c.State {
	case store.ChatOpen:
		return "Open", "open", "The conversation has not closed yet."
	case store.ChatExported:
		return "Exported", "exported", reason
	case store.ChatFailed:
		return "Failed", "failed", reason
	case store.ChatHeld:
		return "Waiting for the CRM", "held", reason
	case store.ChatSkipped:
		switch chat.SkipKind(e) {
		case chat.SkipFilteredOut:
			return "Skipped: filtered out", "skipped", reason
		case chat.SkipNotEnabled:
			return "Skipped: export off", "skipped", reason
		}
		return "Skipped: missing fields", "skipped", reason
	}
	if e != nil && e.Status == store.ChatRetrying {
		return "Retrying", "pending", reason
	}
	return "Exporting", "pending", reason
}

// userNames returns the org's users' names by id.
func (u *UI) userNames(ctx context.Context, orgID string) (map[string]string, error) {
	users, err := u.d.DB.Users(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(users))
	for _, x := range users {
		out[x.ID] = x.Name
	}
	return out, nil
}

// reexport starts a new export round of one conversation.
func (u *UI) chatReexport(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	svc, ok := u.chatService(w, r, rc)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := svc.Reexport(r.Context(), rc.User, id); err != nil {
		status := sbhttp.StatusOf(sb.ErrorCode(err))
		if status >= 500 {
			u.d.Log.Error("ui chat re-export failed", "err", err)
		}
		u.renderChatLog(w, r, rc, status, "", "Not re-exported: "+sb.ErrorMessage(err))
		return
	}
	u.renderChatLog(w, r, rc, http.StatusOK, "Conversation "+id+" is being exported again.", "")
}

// reexportSkipped starts a new export round of every skipped conversation.
func (u *UI) chatReexportSkipped(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	svc, ok := u.chatService(w, r, rc)
	if !ok {
		return
	}
	n, err := svc.ReexportSkipped(r.Context(), rc.User)
	if err != nil {
		u.d.Log.Error("ui chat re-export of skipped conversations failed", "done", n, "err", err)
		u.renderChatLog(w, r, rc, sbhttp.StatusOf(sb.ErrorCode(err)), "", fmt.Sprintf("Re-exported %d, then: %s", n, sb.ErrorMessage(err)))
		return
	}
	if n == 0 {
		u.renderChatLog(w, r, rc, http.StatusOK, "No skipped conversation to re-export.", "")
		return
	}
	if n == 1 {
		u.renderChatLog(w, r, rc, http.StatusOK, "1 skipped conversation is being exported again.", "")
		return
	}
	u.renderChatLog(w, r, rc, http.StatusOK, fmt.Sprintf("%d skipped conversations are being exported again.", n), "")
}
