package chat

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones for transcripts, whatever the host has

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat/rules"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// User assignment rules: who owns the transcript task.
const (
	// AssignContactOwner gives the task to the contact's owner in the CRM
	// (for a new contact: the default owner).
	AssignContactOwner = "contact_owner"
	// AssignChatUser gives the task to the Switchboard user who handled the
	// conversation, by the user's CRM user id (the default owner when no
	// user handled it or the user has no usable CRM id).
	AssignChatUser = "chat_user"
)

// Defaults of the export settings.
const (
	DefaultRetentionDays = 7
	MaxRetentionDays     = 365
	MaxFieldMappings     = 50
	maxPrivateKeyLen     = 16 << 10
)

// DefaultRequiredFields are the captured fields a conversation needs to be
// exported, as a new Salesforce contact needs them.
var DefaultRequiredFields = []string{rules.FieldFirstName, rules.FieldLastName, rules.FieldEmail}

// Settings are an org's chat export settings. The CRM private key is not
// part of them: it is stored sealed, apart.
type Settings struct {
	// Enabled turns the export on; closed conversations of an org without
	// it are logged as skipped (and can be re-exported once it is on).
	Enabled bool `json:"enabled"`
	// InstanceURL, ClientID and Username are the Salesforce JWT bearer
	// connection: the org's My Domain URL, the external client app's
	// consumer key and the API user's username.
	InstanceURL string `json:"instance_url,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	Username    string `json:"username,omitempty"`
	// DefaultOwnerID is the CRM user id that owns new contacts, and tasks
	// when the assignment rule finds nobody.
	DefaultOwnerID string `json:"default_owner_id,omitempty"`
	// UserAssignment is "contact_owner" or "chat_user".
	UserAssignment string `json:"user_assignment"`
	// RequiredFields are the captured fields a conversation must have;
	// email is always among them (contacts are found by email).
	RequiredFields []string `json:"required_fields"`
	// FieldMapping maps captured custom fields to CRM contact fields
	// ("Student Type" → "Mongoose_Student_Type__c").
	FieldMapping map[string]string `json:"field_mapping"`
	// Filter is the export filter (see Filter); "" exports every
	// conversation that has the required fields.
	Filter string `json:"filter,omitempty"`
	// RetentionDays is how long a conversation's content is kept after a
	// successful export (0: deleted at the next purge).
	RetentionDays int `json:"retention_days"`
	// TimeZone is the IANA time zone of transcript timestamps and the
	// task's activity date.
	TimeZone string `json:"time_zone"`
}

// DefaultSettings returns the settings of an org that saved none: export
// off, first name, last name and email required, contact-owner assignment.
func DefaultSettings() Settings {
	return Settings{
		UserAssignment: AssignContactOwner,
		RequiredFields: slices.Clone(DefaultRequiredFields),
		FieldMapping:   map[string]string{},
		RetentionDays:  DefaultRetentionDays,
		TimeZone:       "UTC",
	}
}

// SettingsRequest replaces an org's export settings. Absent fields take
// their defaults, except PrivateKey: absent keeps the stored key, "" removes
// it.
type SettingsRequest struct {
	Enabled        bool              `json:"enabled"`
	InstanceURL    string            `json:"instance_url"`
	ClientID       string            `json:"client_id"`
	Username       string            `json:"username"`
	PrivateKey     *string           `json:"private_key"`
	DefaultOwnerID string            `json:"default_owner_id"`
	UserAssignment string            `json:"user_assignment"`
	RequiredFields []string          `json:"required_fields"`
	FieldMapping   map[string]string `json:"field_mapping"`
	Filter         string            `json:"filter"`
	RetentionDays  *int              `json:"retention_days"`
	TimeZone       string            `json:"time_zone"`
	// Reconnect runs the CRM connection again even when its settings did
	// not change (after the CRM revoked it).
	Reconnect bool `json:"reconnect"`
}

// SettingsView is the settings as the API shows them.
type SettingsView struct {
	Settings
	// PrivateKeySet tells whether a private key is stored (it is never
	// shown).
	PrivateKeySet bool `json:"private_key_set"`
	// WidgetEnabled tells whether a public widget token exists.
	WidgetEnabled bool       `json:"widget_enabled"`
	UpdatedBy     string     `json:"updated_by,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
	// Connection reports the CRM connection made by this save, if any.
	Connection *ConnectionResult `json:"connection,omitempty"`
}

// ConnectionResult is the outcome of connecting the CRM with the JWT
// bearer flow.
type ConnectionResult struct {
	Connected   bool   `json:"connected"`
	InstanceURL string `json:"instance_url,omitempty"`
	Username    string `json:"username,omitempty"`
	UserID      string `json:"user_id,omitempty"`
}

// hasConnection reports whether any connection setting is given.
func (s *Settings) hasConnection(key string) bool {
	return s.InstanceURL != "" || s.ClientID != "" || s.Username != "" || key != ""
}

var (
	crmFieldRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)
	clientIDRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
)

// reservedCRMFields are contact fields the export writes itself.
var reservedCRMFields = []string{"id", "ownerid", "firstname", "lastname", "email", "createddate", "lastmodifieddate", "isdeleted"}

// validCRMField reports whether s is a CRM field API name such as
// Mongoose_Student_Type__c.
func validCRMField(s string) bool {
	return crmFieldRE.MatchString(s) && !strings.HasSuffix(s, "_") && !strings.Contains(s, "___")
}

// normalize fills defaults and checks the settings for org. key is the
// private key in force (new or stored). ownerOK checks a default owner id
// for the built-in CRM. Every error names the setting at fault.
func (s *Settings) normalize(org *sb.Org, key string, keyIsNew bool, ownerOK func(id string) bool) error {
	s.InstanceURL = strings.TrimSpace(s.InstanceURL)
	s.ClientID = strings.TrimSpace(s.ClientID)
	s.Username = strings.TrimSpace(s.Username)
	s.DefaultOwnerID = strings.TrimSpace(s.DefaultOwnerID)
	if s.hasConnection(key) {
		if s.InstanceURL == "" {
			return sb.FieldError("instance_url", "instance_url is required with the other CRM connection settings, for example https://yourdomain.my.salesforce.com")
		}
		u, err := salesforce.ValidateInstanceURL(s.InstanceURL)
		if err != nil {
			return err
		}
		s.InstanceURL = u
		switch {
		case s.ClientID == "":
			return sb.FieldError("client_id", "client_id (the external client app's consumer key) is required with the other CRM connection settings")
		case !clientIDRE.MatchString(s.ClientID):
			return sb.FieldError("client_id", "client_id must be the consumer key: up to 255 visible characters without spaces")
		case s.Username == "":
			return sb.FieldError("username", "username (the Salesforce API user's username) is required with the other CRM connection settings")
		case len(s.Username) > 255 || !strings.Contains(s.Username, "@") || strings.ContainsAny(s.Username, " \t\r\n"):
			return sb.FieldError("username", "username must be a Salesforce username, which looks like an email address")
		case key == "":
			return sb.FieldError("private_key", "private_key (the PEM private key whose certificate is uploaded to the external client app) is required with the other CRM connection settings")
		}
	}
	if keyIsNew && key != "" {
		if err := checkPrivateKey(key); err != nil {
			return err
		}
	}
	if s.DefaultOwnerID != "" {
		if org.Settings.CRM == sb.CRMSalesforce {
			if !salesforce.ValidID(s.DefaultOwnerID) || !strings.HasPrefix(s.DefaultOwnerID, "005") {
				return sb.FieldError("default_owner_id", "default_owner_id must be a Salesforce user id (15 or 18 characters starting with 005), not %q", rules.Clip(s.DefaultOwnerID, 20))
			}
		} else if ownerOK != nil && !ownerOK(s.DefaultOwnerID) {
			return sb.FieldError("default_owner_id", "default_owner_id %q is not a user of this org", rules.Clip(s.DefaultOwnerID, 40))
		}
	}
	switch s.UserAssignment {
	case "":
		s.UserAssignment = AssignContactOwner
	case AssignContactOwner, AssignChatUser:
	default:
		return sb.FieldError("user_assignment", "user_assignment must be %q or %q, not %q", AssignContactOwner, AssignChatUser, rules.Clip(s.UserAssignment, 30))
	}
	if s.RequiredFields == nil {
		s.RequiredFields = slices.Clone(DefaultRequiredFields)
	}
	req := make([]string, 0, len(s.RequiredFields))
	seen := map[string]bool{}
	for i, n := range s.RequiredFields {
		if err := rules.CheckFieldName(fmt.Sprintf("required_fields[%d]", i), n); err != nil {
			return err
		}
		key := rules.FieldKey(n)
		if seen[key] {
			continue
		}
		seen[key] = true
		if rules.IsStandard(key) {
			n = key
		}
		req = append(req, strings.TrimSpace(n))
	}
	if !seen[rules.FieldEmail] {
		return sb.FieldError("required_fields", "required_fields must include email: the export finds the contact by email")
	}
	if len(req) > rules.MaxFields {
		return sb.FieldError("required_fields", "at most %d required fields", rules.MaxFields)
	}
	s.RequiredFields = req
	if len(s.FieldMapping) > MaxFieldMappings {
		return sb.FieldError("field_mapping", "at most %d mapped fields", MaxFieldMappings)
	}
	mapping := make(map[string]string, len(s.FieldMapping))
	targets := map[string]string{}
	names := make([]string, 0, len(s.FieldMapping))
	for n := range s.FieldMapping {
		names = append(names, n)
	}
	slices.Sort(names)
	keys := map[string]string{}
	for _, n := range names {
		at := "field_mapping." + n
		if err := rules.CheckFieldName(at, n); err != nil {
			return err
		}
		key := rules.FieldKey(n)
		if rules.IsStandard(key) {
			return sb.FieldError(at, "%s is written to the contact's %s already; map custom fields only", key, strings.ToLower(rules.Label(key)))
		}
		if other, dup := keys[key]; dup {
			return sb.FieldError(at, "field_mapping has %q and %q, which name the same captured field", other, n)
		}
		keys[key] = n
		target := strings.TrimSpace(s.FieldMapping[n])
		if !validCRMField(target) {
			return sb.FieldError(at, "%q must be mapped to a CRM field API name such as Mongoose_Student_Type__c, not %q", n, rules.Clip(target, 40))
		}
		if slices.Contains(reservedCRMFields, strings.ToLower(target)) {
			return sb.FieldError(at, "%s is written by the export itself and cannot be mapped", target)
		}
		if other, dup := targets[strings.ToLower(target)]; dup {
			return sb.FieldError(at, "%q and %q are both mapped to %s", other, n, target)
		}
		targets[strings.ToLower(target)] = n
		mapping[strings.TrimSpace(n)] = target
	}
	s.FieldMapping = mapping
	f, err := rules.ParseFilter(s.Filter)
	if err != nil {
		return err
	}
	s.Filter = f.String()
	if s.RetentionDays < 0 || s.RetentionDays > MaxRetentionDays {
		return sb.FieldError("retention_days", "retention_days must be between 0 and %d, not %d", MaxRetentionDays, s.RetentionDays)
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(s.TimeZone); err != nil || strings.EqualFold(s.TimeZone, "local") {
		return sb.FieldError("time_zone", "time_zone must be an IANA time zone such as America/New_York, not %q", rules.Clip(s.TimeZone, 40))
	}
	return nil
}

// location returns the settings' time zone (UTC when unknown).
func (s *Settings) location() *time.Location {
	if loc, err := time.LoadLocation(s.TimeZone); err == nil && s.TimeZone != "" {
		return loc
	}
	return time.UTC
}

// missing returns the required fields the captured fields lack.
func (s *Settings) missing(f rules.Fields) []string {
	var out []string
	for _, n := range s.RequiredFields {
		if strings.TrimSpace(f.Get(n)) == "" {
			out = append(out, n)
		}
	}
	return out
}

// checkPrivateKey checks a PEM RSA private key (PKCS #1 or PKCS #8).
func checkPrivateKey(k string) error {
	bad := sb.FieldError("private_key", "private_key must be an RSA private key in PEM form (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")
	if len(k) > maxPrivateKeyLen {
		return sb.FieldError("private_key", "private_key is larger than %d bytes", maxPrivateKeyLen)
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(k)))
	if block == nil {
		return bad
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return bad
		}
	case "PRIVATE KEY":
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return bad
		}
	default:
		return bad
	}
	return nil
}

// loadSettings returns an org's settings and stored record (nil when it
// saved none: the defaults apply).
func (s *Service) loadSettings(ctx context.Context, orgID string) (Settings, *store.ChatSettingsRecord, error) {
	rec, err := s.DB.ChatSettings(ctx, orgID)
	if err != nil || rec == nil {
		return DefaultSettings(), rec, err
	}
	st := DefaultSettings()
	if err := json.Unmarshal(rec.Settings, &st); err != nil {
		return st, rec, fmt.Errorf("chat settings of org %s: %w", orgID, err)
	}
	if st.FieldMapping == nil {
		st.FieldMapping = map[string]string{}
	}
	return st, rec, nil
}

func view(st Settings, rec *store.ChatSettingsRecord) *SettingsView {
	v := &SettingsView{Settings: st}
	if rec != nil {
		v.PrivateKeySet = rec.PrivateKey != ""
		v.WidgetEnabled = len(rec.WidgetTokenHash) > 0
		v.UpdatedBy = rec.UpdatedBy
		at := rec.UpdatedAt
		v.UpdatedAt = &at
	}
	return v
}

// Settings returns the org's export settings (System Admin).
func (s *Service) Settings(ctx context.Context, user *sb.User) (*SettingsView, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	st, rec, err := s.loadSettings(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	return view(st, rec), nil
}

// PutSettings replaces the org's export settings (System Admin). When the
// org's CRM is Salesforce and the connection settings changed (or Reconnect
// is set), the CRM is connected with the JWT bearer flow first; the
// settings are saved only when that works.
func (s *Service) PutSettings(ctx context.Context, user *sb.User, req SettingsRequest) (*SettingsView, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := s.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	old, rec, err := s.loadSettings(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	key := ""
	if rec != nil {
		key = rec.PrivateKey
	}
	keyIsNew := req.PrivateKey != nil
	if keyIsNew {
		key = strings.TrimSpace(*req.PrivateKey)
		if key != "" {
			key += "\n"
		}
	}
	st := Settings{
		Enabled: req.Enabled, InstanceURL: req.InstanceURL, ClientID: req.ClientID, Username: req.Username,
		DefaultOwnerID: req.DefaultOwnerID, UserAssignment: req.UserAssignment, RequiredFields: req.RequiredFields,
		FieldMapping: req.FieldMapping, Filter: req.Filter, RetentionDays: DefaultRetentionDays, TimeZone: req.TimeZone,
	}
	if req.RetentionDays != nil {
		st.RetentionDays = *req.RetentionDays
	}
	ownerOK := func(id string) bool { _, err := s.DB.User(ctx, org.ID, id); return err == nil }
	if err := st.normalize(org, key, keyIsNew, ownerOK); err != nil {
		return nil, err
	}
	var conn *ConnectionResult
	changed := st.InstanceURL != old.InstanceURL || st.ClientID != old.ClientID || st.Username != old.Username || rec == nil || key != rec.PrivateKey
	if st.hasConnection(key) && (changed || req.Reconnect) && org.Settings.CRM == sb.CRMSalesforce {
		if s.Connector == nil {
			return nil, sb.Errorf(sb.EUnavailable, "this server cannot connect to Salesforce (no Salesforce client is configured)")
		}
		c, err := s.Connector.ConnectJWT(ctx, org.ID, salesforce.JWTSettings{InstanceURL: st.InstanceURL, ClientID: st.ClientID, Username: st.Username, PrivateKeyPEM: key})
		if err != nil {
			if sb.IsCode(err, sb.EUnauthorized) {
				// Salesforce refused the settings: that is bad input here,
				// not a bad API key.
				return nil, &sb.Error{Code: sb.EInvalid, Field: "connection", Message: sb.ErrorMessage(err), Err: err}
			}
			return nil, err
		}
		conn = &ConnectionResult{Connected: true, InstanceURL: c.InstanceURL, Username: c.Username, UserID: c.UserID}
	}
	doc, _ := json.Marshal(st)
	next := &store.ChatSettingsRecord{Settings: doc, PrivateKey: key, UpdatedBy: user.ID}
	if rec != nil {
		next.WidgetTokenHash = rec.WidgetTokenHash
	}
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveChatSettings(ctx, org.ID, next) }); err != nil {
		return nil, err
	}
	v := view(st, next)
	v.Connection = conn
	return v, nil
}
