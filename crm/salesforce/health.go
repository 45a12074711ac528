package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard"
)

// HealthReport is the outcome of a connection health check.
type HealthReport struct {
	OrgID string       `json:"org_id"`
	Time  time.Time    `json:"time"`
	OK    bool         `json:"ok"`
	Items []HealthItem `json:"items"`
}

// HealthItem is one check; Message tells an admin what to do when it
// failed.
type HealthItem struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Health check item names.
const (
	CheckConnection    = "connection"
	CheckToken         = "token"
	CheckIdentity      = "identity"
	CheckMessageObject = "message_object"
	CheckRecordObjects = "record_objects"
	CheckTaskObject    = "task_object"
	CheckClickObject   = "click_object"
	CheckFormObject    = "form_object"
	CheckAPIBudget     = "api_budget"
)

// Failing returns the items that failed.
func (r *HealthReport) Failing() []HealthItem {
	var out []HealthItem
	for _, it := range r.Items {
		if !it.OK {
			out = append(out, it)
		}
	}
	return out
}

// Item returns the item with the given name.
func (r *HealthReport) Item(name string) (HealthItem, bool) {
	for _, it := range r.Items {
		if it.Name == name {
			return it, true
		}
	}
	return HealthItem{}, false
}

// describeResult is the part of an sObject describe Switchboard checks.
type describeResult struct {
	Name       string `json:"name"`
	Createable bool   `json:"createable"`
	Updateable bool   `json:"updateable"`
	Fields     []struct {
		Name       string `json:"name"`
		Createable bool   `json:"createable"`
		Updateable bool   `json:"updateable"`
		ExternalID bool   `json:"externalId"`
		IDLookup   bool   `json:"idLookup"`
	} `json:"fields"`
}

// Check runs the connection health check of an org and saves the report:
// the connection is online, its token works (refreshed if needed), the
// identity URL answers, the message, click and form objects and every
// mapped field can be created and updated and their external id fields
// are External ID fields (records are upserted by them), the mapped record
// objects have their fields, tasks can be created (and upserted by the
// task external id field), and the API budget is below the threshold.
func (c *Client) Check(ctx context.Context, org *switchboard.Org) *HealthReport {
	r := &HealthReport{Time: c.cfg.Now()}
	if org != nil {
		r.OrgID = org.ID
	}
	add := func(name string, ok bool, format string, args ...any) {
		r.Items = append(r.Items, HealthItem{Name: name, OK: ok, Message: fmt.Sprintf(format, args...)})
	}
	c.check(ctx, org, add)
	r.OK = len(r.Items) > 0 && len(r.Failing()) == 0
	if org != nil {
		if err := c.store.SaveHealth(ctx, org.ID, r); err != nil {
			c.cfg.Logger.Error("salesforce: cannot save health report", "org", org.ID, "err", err)
		}
	}
	return r
}

func (c *Client) check(ctx context.Context, org *switchboard.Org, add func(string, bool, string, ...any)) {
	if org == nil {
		add(CheckConnection, false, "no org given")
		return
	}
	conn, err := c.connection(ctx, org.ID)
	if err != nil {
		add(CheckConnection, false, "%s", errorText(err))
		return
	}
	if err := conn.Mapping.Validate(); err != nil {
		add(CheckConnection, false, "the Salesforce mapping is invalid: %s", switchboard.ErrorMessage(err))
		return
	}
	add(CheckConnection, true, "connected as %s", conn.Username)

	if _, err := c.do(ctx, org.ID, apiRequest{method: http.MethodGet, url: c.dataPath("/")}); err != nil {
		add(CheckToken, false, "the access token does not work: %s", errorText(err))
		return
	}
	add(CheckToken, true, "the access token works")

	if conn, err = c.connection(ctx, org.ID); err != nil {
		add(CheckIdentity, false, "%s", errorText(err))
		return
	}
	if id, err := c.identity(ctx, org.ID, conn); err != nil {
		add(CheckIdentity, false, "%s", errorText(err))
	} else {
		add(CheckIdentity, true, "the identity URL answers for %s", id.Username)
	}

	m := conn.Mapping
	f := m.Fields
	// Messages are upserted: every field written at create may also update
	// an existing record.
	fields := []string{f.ExternalID, f.Direction, f.Status, f.Body, f.Media, f.Phone, f.Gateway, f.Owner, f.Debug, f.Segments, f.ProviderMessageID, f.BatchID}
	for _, r := range m.Records {
		fields = append(fields, r.LookupField)
	}
	c.checkWritable(ctx, org.ID, conn.Username, add, CheckMessageObject, objectCheck{object: m.MessageObject, write: true, externalID: f.ExternalID, create: fields, update: fields})

	var problems []string
	for _, obj := range m.Records {
		read := append([]string{obj.FirstNameField, obj.LastNameField, obj.EmailField, obj.OwnerField, obj.OptOutField}, obj.PhoneFields...)
		if msg := c.checkObject(ctx, org.ID, conn.Username, objectCheck{object: obj.Object, create: read}); msg != "" {
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		add(CheckRecordObjects, false, "%s", strings.Join(problems, "; "))
	} else {
		add(CheckRecordObjects, true, "the mapped record objects have their fields")
	}

	taskFields := []string{"Subject", "Status", "Description", "ActivityDate", "OwnerId", "WhoId", m.TaskExternalIDField}
	task := objectCheck{object: m.TaskObject, write: true, externalID: m.TaskExternalIDField, create: taskFields}
	if m.TaskExternalIDField != "" {
		task.update = taskFields // upserted: a repeated export updates the task
	}
	c.checkWritable(ctx, org.ID, conn.Username, add, CheckTaskObject, task)

	cf := m.Clicks.Fields
	fields = []string{cf.ExternalID, cf.Message, cf.URL, cf.ShortURL, cf.ClickedAt, cf.IPAddress, cf.Domain, cf.Browser}
	for _, r := range m.Records {
		fields = append(fields, lookupField(m.Clicks.Lookups, r))
	}
	c.checkWritable(ctx, org.ID, conn.Username, add, CheckClickObject, objectCheck{object: m.Clicks.Object, write: true, externalID: cf.ExternalID, create: fields, update: fields})

	ff := m.Forms.Fields
	fields = []string{ff.ExternalID, ff.FormName, ff.FormID, ff.Status, ff.Owner, ff.CreatedBy, ff.StartedAt, ff.EndedAt, ff.Answers}
	for _, r := range m.Records {
		fields = append(fields, lookupField(m.Forms.Lookups, r))
	}
	c.checkWritable(ctx, org.ID, conn.Username, add, CheckFormObject, objectCheck{object: m.Forms.Object, write: true, externalID: ff.ExternalID, create: fields, update: fields})

	used, max := c.Usage(org.ID)
	switch {
	case max == 0:
		add(CheckAPIBudget, true, "API usage not reported yet")
	case c.Throttle(org.ID):
		add(CheckAPIBudget, false, "%d of %d daily API requests used (%.0f%%); write-backs are slowed down. Raise the org's API limit or lower other integrations' usage", used, max, 100*float64(used)/float64(max))
	default:
		add(CheckAPIBudget, true, "%d of %d daily API requests used", used, max)
	}
}

// objectCheck is what the health check requires of an object: fields in
// create must exist (and be createable when the object is written), fields
// in update must be updateable, and externalID must be an External ID
// field (upserts match on it).
type objectCheck struct {
	object string
	// write: Switchboard creates records of the object, not only reads.
	write          bool
	externalID     string
	create, update []string
}

// checkWritable adds the health item of an object Switchboard writes.
func (c *Client) checkWritable(ctx context.Context, orgID, username string, add func(string, bool, string, ...any), item string, oc objectCheck) {
	if msg := c.checkObject(ctx, orgID, username, oc); msg != "" {
		add(item, false, "%s", msg)
		return
	}
	verb := "created and updated"
	if len(oc.update) == 0 {
		verb = "created"
	}
	add(item, true, "%s and its mapped fields can be %s", oc.object, verb)
}

// checkObject describes an object and returns what is wrong with it, or "".
func (c *Client) checkObject(ctx context.Context, orgID, username string, oc objectCheck) string {
	object, write := oc.object, oc.write
	resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodGet, url: c.dataPath("/sobjects/%s/describe", object)})
	if err != nil {
		if e, ok := err.(*switchboard.CRMError); ok && (e.Code == "NOT_FOUND" || e.Code == "INVALID_TYPE") {
			return fmt.Sprintf("the object %s does not exist or is not visible to %s; install the package or give the user access", object, username)
		}
		return fmt.Sprintf("the object %s could not be described: %s", object, errorText(err))
	}
	var d describeResult
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return fmt.Sprintf("the object %s could not be described: unexpected answer", object)
	}
	if write && !d.Createable {
		return fmt.Sprintf("%s cannot be created by %s; grant Create on it", object, username)
	}
	if len(oc.update) > 0 && !d.Updateable {
		return fmt.Sprintf("%s cannot be created and updated by %s; grant Create and Edit on it", object, username)
	}
	type access struct{ create, update, external bool }
	fields := map[string]access{}
	for _, f := range d.Fields {
		fields[strings.ToLower(f.Name)] = access{f.Createable, f.Updateable, f.ExternalID || f.IDLookup}
	}
	var missing, readOnly []string
	seen := map[string]bool{}
	check := func(kind, name string, need func(access) bool) {
		if name == "" || seen[kind+strings.ToLower(name)] {
			return
		}
		seen[kind+strings.ToLower(name)] = true
		a, ok := fields[strings.ToLower(name)]
		switch {
		case !ok:
			if !contains(missing, name) {
				missing = append(missing, name)
			}
		case need != nil && !need(a) && !contains(readOnly, name):
			readOnly = append(readOnly, name)
		}
	}
	for _, f := range oc.create {
		if write {
			check("create:", f, func(a access) bool { return a.create })
		} else {
			check("read:", f, nil)
		}
	}
	for _, f := range oc.update {
		check("update:", f, func(a access) bool { return a.update })
	}
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, fmt.Sprintf("%s is missing the field(s) %s, or they are hidden from %s by field-level security", object, strings.Join(missing, ", "), username))
	}
	if len(readOnly) > 0 {
		msgs = append(msgs, fmt.Sprintf("%s cannot write the field(s) %s of %s; make them editable for the user", username, strings.Join(readOnly, ", "), object))
	}
	if a, ok := fields[strings.ToLower(oc.externalID)]; oc.externalID != "" && ok && !a.external {
		msgs = append(msgs, fmt.Sprintf("%s.%s is not an External ID field, so records cannot be upserted by it; mark it External ID (and Unique)", object, oc.externalID))
	}
	return strings.Join(msgs, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func errorText(err error) string {
	if e, ok := err.(*switchboard.CRMError); ok {
		return e.Message
	}
	return switchboard.ErrorMessage(err)
}
