package salesforce

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/switchboard/switchboard"
)

// Mapping tells which Salesforce objects and fields Switchboard reads and
// writes. Field names are API names ("Status__c"); an empty optional field
// is neither written nor read.
type Mapping struct {
	// MessageObject holds one record per message (Switchboard_Message__c).
	MessageObject string        `json:"message_object"`
	Fields        MessageFields `json:"fields"`
	// Records are the objects messages belong to, told apart by the key
	// prefix of their record ids (003 Contact, 00Q Lead).
	Records []RecordObject `json:"records"`
	// TaskObject is where chat transcripts go (Task).
	TaskObject string `json:"task_object"`
	// TaskExternalIDField, when set, names an External ID field on the task
	// object; tasks with an ExternalID are then upserted by it, so a
	// repeated export does not create a second task. The default is
	// Switchboard_Chat_Id__c.
	TaskExternalIDField string `json:"task_external_id_field,omitempty"`
	// Clicks maps tracked-link clicks (Switchboard_Link_Click__c).
	Clicks ClickMapping `json:"clicks"`
	// Forms maps SMS form records (Switchboard_Form_Response__c).
	Forms FormMapping `json:"forms"`
}

// ClickMapping is the object that holds one record per tracked-link click,
// upserted by Switchboard's click id.
type ClickMapping struct {
	Object string      `json:"object"`
	Fields ClickFields `json:"fields"`
	// Lookups names, by record object (as in Mapping.Records), the click
	// object's lookup to that object. A record object not listed uses the
	// same field name as the message object's lookup.
	Lookups map[string]string `json:"lookups,omitempty"`
}

// ClickFields are the fields of the click object.
type ClickFields struct {
	// ExternalID holds Switchboard's click id (an External ID field).
	ExternalID string `json:"external_id"`
	// Message is the lookup to the message record the link was sent in.
	Message   string `json:"message,omitempty"`
	URL       string `json:"url,omitempty"`
	ShortURL  string `json:"short_url,omitempty"`
	ClickedAt string `json:"clicked_at,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
	Domain    string `json:"domain,omitempty"`
	Browser   string `json:"browser,omitempty"`
}

// FormMapping is the object that holds one record per SMS form session,
// upserted by Switchboard's session id and written again as answers
// arrive.
type FormMapping struct {
	Object string     `json:"object"`
	Fields FormFields `json:"fields"`
	// Lookups names, by record object, the form object's lookup to that
	// object; a record object not listed uses the message object's field
	// name.
	Lookups map[string]string `json:"lookups,omitempty"`
}

// FormFields are the fields of the form-response object.
type FormFields struct {
	// ExternalID holds Switchboard's session id (an External ID field).
	ExternalID string `json:"external_id"`
	FormName   string `json:"form_name,omitempty"`
	FormID     string `json:"form_id,omitempty"`
	Status     string `json:"status,omitempty"`
	Owner      string `json:"owner,omitempty"`
	// CreatedBy is a user lookup for who started the form (none by
	// default).
	CreatedBy string `json:"created_by,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	EndedAt   string `json:"ended_at,omitempty"`
	// Answers is a long text area that receives the answers as a readable
	// transcript, one "question: answer" line each.
	Answers string `json:"answers,omitempty"`
}

// MessageFields are the fields of the message object.
type MessageFields struct {
	// ExternalID holds Switchboard's message id (an External ID field).
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	Direction  string `json:"direction"`
	Body       string `json:"body,omitempty"`
	// Media holds the media (MMS, WhatsApp) URLs of a message, one per
	// line; a long text area.
	Media             string `json:"media,omitempty"`
	Phone             string `json:"phone,omitempty"`
	Gateway           string `json:"gateway,omitempty"`
	Debug             string `json:"debug,omitempty"`
	Segments          string `json:"segments,omitempty"`
	ProviderMessageID string `json:"provider_message_id,omitempty"`
	BatchID           string `json:"batch_id,omitempty"`
	Owner             string `json:"owner,omitempty"`
}

// RecordObject is an object messages can belong to.
type RecordObject struct {
	Object string `json:"object"`
	// KeyPrefix is the first three characters of the object's record ids.
	KeyPrefix string `json:"key_prefix"`
	// LookupField is the message object's lookup to this object.
	LookupField string `json:"lookup_field"`
	// PhoneFields are searched by FindByPhone, in order of preference; the
	// first is written when SaveContactAndTask creates a contact.
	PhoneFields []string `json:"phone_fields"`
	// OptOutField is the global opt-out checkbox.
	OptOutField    string `json:"opt_out_field,omitempty"`
	FirstNameField string `json:"first_name_field,omitempty"`
	LastNameField  string `json:"last_name_field,omitempty"`
	EmailField     string `json:"email_field,omitempty"`
	OwnerField     string `json:"owner_field,omitempty"`
}

// Standard object names.
const (
	ObjectContact = "Contact"
	ObjectLead    = "Lead"
	ObjectTask    = "Task"
)

// DefaultMapping returns the mapping of the Switchboard managed objects.
func DefaultMapping() Mapping {
	person := func(object, prefix, lookup string) RecordObject {
		return RecordObject{
			Object:         object,
			KeyPrefix:      prefix,
			LookupField:    lookup,
			PhoneFields:    []string{"MobilePhone", "Phone"},
			OptOutField:    "Switchboard_Opt_Out__c",
			FirstNameField: "FirstName",
			LastNameField:  "LastName",
			EmailField:     "Email",
			OwnerField:     "OwnerId",
		}
	}
	return Mapping{
		MessageObject: "Switchboard_Message__c",
		Fields: MessageFields{
			ExternalID:        "Switchboard_Id__c",
			Status:            "Status__c",
			Direction:         "Direction__c",
			Body:              "Body__c",
			Media:             "Media_Urls__c",
			Phone:             "Phone__c",
			Gateway:           "Gateway_Number__c",
			Debug:             "Debug__c",
			Segments:          "Segments__c",
			ProviderMessageID: "Provider_Message_Id__c",
			BatchID:           "Batch_Id__c",
			Owner:             "OwnerId",
		},
		Records: []RecordObject{
			person(ObjectContact, "003", "Contact__c"),
			person(ObjectLead, "00Q", "Lead__c"),
		},
		TaskObject:          ObjectTask,
		TaskExternalIDField: "Switchboard_Chat_Id__c",
		Clicks:              DefaultClickMapping(),
		Forms:               DefaultFormMapping(),
	}
}

// DefaultClickMapping returns the mapping of the Switchboard_Link_Click__c
// managed object.
func DefaultClickMapping() ClickMapping {
	return ClickMapping{
		Object: "Switchboard_Link_Click__c",
		Fields: ClickFields{
			ExternalID: "Switchboard_Id__c",
			Message:    "Message__c",
			URL:        "URL__c",
			ShortURL:   "Short_URL__c",
			ClickedAt:  "Clicked_At__c",
			IPAddress:  "IP_Address__c",
			Domain:     "Domain__c",
			Browser:    "Browser__c",
		},
		Lookups: map[string]string{ObjectContact: "Contact__c", ObjectLead: "Lead__c"},
	}
}

// DefaultFormMapping returns the mapping of the
// Switchboard_Form_Response__c managed object.
func DefaultFormMapping() FormMapping {
	return FormMapping{
		Object: "Switchboard_Form_Response__c",
		Fields: FormFields{
			ExternalID: "Switchboard_Session_Id__c",
			FormName:   "Form_Name__c",
			FormID:     "Form_Id__c",
			Status:     "Status__c",
			Owner:      "OwnerId",
			StartedAt:  "Started_At__c",
			EndedAt:    "Ended_At__c",
			Answers:    "Answers__c",
		},
		Lookups: map[string]string{ObjectContact: "Contact__c", ObjectLead: "Lead__c"},
	}
}

// WithDefaults returns the mapping with a default click or form section
// where that section is empty (no object): mappings saved before those
// sections existed get the managed objects.
func (m Mapping) WithDefaults() Mapping {
	if m.Clicks.Object == "" {
		m.Clicks = DefaultClickMapping()
	}
	if m.Forms.Object == "" {
		m.Forms = DefaultFormMapping()
	}
	return m
}

// Clone returns a deep copy.
func (m Mapping) Clone() Mapping {
	m.Records = slices.Clone(m.Records)
	for i := range m.Records {
		m.Records[i].PhoneFields = slices.Clone(m.Records[i].PhoneFields)
	}
	m.Clicks.Lookups = maps.Clone(m.Clicks.Lookups)
	m.Forms.Lookups = maps.Clone(m.Forms.Lookups)
	return m
}

// IsZero reports whether the mapping was never set.
func (m Mapping) IsZero() bool {
	return m.MessageObject == "" && len(m.Records) == 0 && m.TaskObject == ""
}

var (
	apiNameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)
	keyPrefixRE = regexp.MustCompile(`^[A-Za-z0-9]{3}$`)
)

func validAPIName(s string) bool {
	return apiNameRE.MatchString(s) && !strings.HasSuffix(s, "_") && !strings.Contains(s, "___")
}

// Validate checks the mapping; the error names the setting at fault.
// Because names end up in SOQL and JSON, only API names are accepted.
func (m Mapping) Validate() error {
	name := checkName
	f := m.Fields
	checks := []struct {
		field, value string
		required     bool
	}{
		{"mapping.message_object", m.MessageObject, true},
		{"mapping.fields.external_id", f.ExternalID, true},
		{"mapping.fields.status", f.Status, true},
		{"mapping.fields.direction", f.Direction, true},
		{"mapping.fields.body", f.Body, false},
		{"mapping.fields.media", f.Media, false},
		{"mapping.fields.phone", f.Phone, false},
		{"mapping.fields.gateway", f.Gateway, false},
		{"mapping.fields.debug", f.Debug, false},
		{"mapping.fields.segments", f.Segments, false},
		{"mapping.fields.provider_message_id", f.ProviderMessageID, false},
		{"mapping.fields.batch_id", f.BatchID, false},
		{"mapping.fields.owner", f.Owner, false},
		{"mapping.task_object", m.TaskObject, true},
		{"mapping.task_external_id_field", m.TaskExternalIDField, false},
	}
	seen := map[string]string{}
	for i, c := range checks {
		if err := name(c.field, c.value, c.required); err != nil {
			return err
		}
		if i == 0 || c.value == "" || strings.HasPrefix(c.field, "mapping.task") {
			continue
		}
		key := strings.ToLower(c.value)
		if other, dup := seen[key]; dup {
			return switchboard.FieldError(c.field, "%s and %s both name the field %s", other, c.field, c.value)
		}
		seen[key] = c.field
	}
	prefixes := map[string]bool{}
	for i, r := range m.Records {
		at := fmt.Sprintf("mapping.records[%d]", i)
		if err := name(at+".object", r.Object, true); err != nil {
			return err
		}
		if !keyPrefixRE.MatchString(r.KeyPrefix) {
			return switchboard.FieldError(at+".key_prefix", "%s.key_prefix must be the 3-character id prefix of %s records (such as 003), not %q", at, r.Object, r.KeyPrefix)
		}
		if prefixes[r.KeyPrefix] {
			return switchboard.FieldError(at+".key_prefix", "key prefix %s is mapped twice", r.KeyPrefix)
		}
		prefixes[r.KeyPrefix] = true
		if err := name(at+".lookup_field", r.LookupField, true); err != nil {
			return err
		}
		if other, dup := seen[strings.ToLower(r.LookupField)]; dup {
			return switchboard.FieldError(at+".lookup_field", "%s and %s.lookup_field both name the field %s", other, at, r.LookupField)
		}
		seen[strings.ToLower(r.LookupField)] = at + ".lookup_field"
		for j, p := range r.PhoneFields {
			if err := name(fmt.Sprintf("%s.phone_fields[%d]", at, j), p, true); err != nil {
				return err
			}
		}
		for _, c := range []struct{ field, value string }{
			{at + ".opt_out_field", r.OptOutField},
			{at + ".first_name_field", r.FirstNameField},
			{at + ".last_name_field", r.LastNameField},
			{at + ".email_field", r.EmailField},
			{at + ".owner_field", r.OwnerField},
		} {
			if err := name(c.field, c.value, false); err != nil {
				return err
			}
		}
	}
	c, fm := m.Clicks, m.Forms
	if err := m.validateSection("mapping.clicks", c.Object, c.Lookups, []namedField{
		{"external_id", c.Fields.ExternalID, true},
		{"message", c.Fields.Message, false},
		{"url", c.Fields.URL, false},
		{"short_url", c.Fields.ShortURL, false},
		{"clicked_at", c.Fields.ClickedAt, false},
		{"ip_address", c.Fields.IPAddress, false},
		{"domain", c.Fields.Domain, false},
		{"browser", c.Fields.Browser, false},
	}); err != nil {
		return err
	}
	return m.validateSection("mapping.forms", fm.Object, fm.Lookups, []namedField{
		{"external_id", fm.Fields.ExternalID, true},
		{"form_name", fm.Fields.FormName, false},
		{"form_id", fm.Fields.FormID, false},
		{"status", fm.Fields.Status, false},
		{"owner", fm.Fields.Owner, false},
		{"created_by", fm.Fields.CreatedBy, false},
		{"started_at", fm.Fields.StartedAt, false},
		{"ended_at", fm.Fields.EndedAt, false},
		{"answers", fm.Fields.Answers, false},
	})
}

// checkName checks one API name setting; field is the setting's path.
func checkName(field, v string, required bool) error {
	if v == "" {
		if required {
			return switchboard.FieldError(field, "%s is required", field)
		}
		return nil
	}
	if !validAPIName(v) {
		return switchboard.FieldError(field, "%s must be a Salesforce API name such as Status__c, not %q", field, v)
	}
	return nil
}

type namedField struct {
	key, value string
	required   bool
}

// validateSection checks the click or form section at path: its object,
// its fields, and its lookups, which must name mapped record objects; no
// two settings may name the same field.
func (m Mapping) validateSection(path, object string, lookups map[string]string, fields []namedField) error {
	if err := checkName(path+".object", object, true); err != nil {
		return err
	}
	seen := map[string]string{}
	use := func(setting, value string) error {
		key := strings.ToLower(value)
		if other, dup := seen[key]; dup {
			return switchboard.FieldError(setting, "%s and %s both name the field %s", other, setting, value)
		}
		seen[key] = setting
		return nil
	}
	for _, f := range fields {
		setting := path + ".fields." + f.key
		if err := checkName(setting, f.value, f.required); err != nil {
			return err
		}
		if f.value != "" {
			if err := use(setting, f.value); err != nil {
				return err
			}
		}
	}
	objects := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(lookups)) {
		setting := path + ".lookups." + k
		r, ok := m.recordObject(k)
		if !ok {
			return switchboard.FieldError(setting, "%s: %s is not one of the mapped record objects (mapping.records)", setting, k)
		}
		if objects[r.Object] {
			return switchboard.FieldError(setting, "%s: the lookup to %s is given twice", setting, r.Object)
		}
		objects[r.Object] = true
		if err := checkName(setting, lookups[k], true); err != nil {
			return err
		}
	}
	for _, r := range m.Records {
		if err := use(path+".lookups."+r.Object, lookupField(lookups, r)); err != nil {
			return err
		}
	}
	return nil
}

// lookupField returns the field of a click or form object that looks up
// records of r: the section's own setting, else the message object's.
func lookupField(lookups map[string]string, r RecordObject) string {
	for k, v := range lookups {
		if strings.EqualFold(k, r.Object) {
			return v
		}
	}
	return r.LookupField
}

// recordObjectFor returns the object a record id belongs to by its prefix.
func (m Mapping) recordObjectFor(id string) (RecordObject, bool) {
	if len(id) < 3 {
		return RecordObject{}, false
	}
	for _, r := range m.Records {
		if r.KeyPrefix == id[:3] {
			return r, true
		}
	}
	return RecordObject{}, false
}

// recordObject returns the mapped object with the given name.
func (m Mapping) recordObject(name string) (RecordObject, bool) {
	for _, r := range m.Records {
		if strings.EqualFold(r.Object, name) {
			return r, true
		}
	}
	return RecordObject{}, false
}

// selectFields lists the fields read for records of r.
func (r RecordObject) selectFields() []string {
	fields := append([]string{"Id", r.FirstNameField, r.LastNameField, r.EmailField, r.OwnerField}, r.PhoneFields...)
	return fieldList(append(fields, r.OptOutField, "CreatedDate")...)
}

// fieldList returns the field names of a SELECT: each once (API names are
// case-insensitive), unmapped (empty) ones left out, in the order given.
func fieldList(names ...string) []string {
	var out []string
	for _, f := range names {
		if f != "" && !slices.ContainsFunc(out, func(g string) bool { return strings.EqualFold(f, g) }) {
			out = append(out, f)
		}
	}
	return out
}

// SetMapping validates a mapping and stores it on the org's connection.
// It is serialized with the org's token refreshes in this process; a SQL
// store should still write only the mapping column (see Store).
func (c *Client) SetMapping(ctx context.Context, orgID string, m Mapping) error {
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return err
	}
	st := c.org(orgID)
	st.refreshMu.Lock()
	defer st.refreshMu.Unlock()
	conn, err := c.store.LoadConnection(ctx, orgID)
	if err != nil {
		return err
	}
	conn.Mapping = m.Clone()
	return c.store.SaveConnection(ctx, orgID, conn)
}
