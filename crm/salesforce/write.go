package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/switchboard/switchboard"
)

// Batch limits of sObject Collections and Composite requests.
const (
	collectionSize      = 200
	collectionsPerBatch = 5
)

var recordIDRE = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

// ValidID reports whether s looks like a Salesforce record id (15 or 18
// letters and digits).
func ValidID(s string) bool { return recordIDRE.MatchString(s) }

// saveResult is one record's outcome in sObject Collections answers.
type saveResult struct {
	ID      string      `json:"id"`
	Success bool        `json:"success"`
	Errors  []saveError `json:"errors"`
}

type saveError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

// writeOp is one record to create or update; updates of the same record
// are merged into one op.
type writeOp struct {
	indexes []int
	create  bool
	id      string
	record  map[string]any
	upd     updateFields
}

type updateFields struct {
	status     switchboard.Status
	debug      string
	providerID string
	segments   int
}

type opResult struct {
	id  string
	err *switchboard.CRMError
}

// WriteMessages implements switchboard.CRM: creates go to sObject
// Collections POST, updates to PATCH, both together in one /composite
// request when a call has both; see the package documentation.
func (c *Client) WriteMessages(ctx context.Context, org *switchboard.Org, msgs []switchboard.CRMMessage) ([]switchboard.CRMResult, error) {
	if org == nil {
		return nil, switchboard.FieldError("org", "org is required")
	}
	results := make([]switchboard.CRMResult, len(msgs))
	if len(msgs) == 0 {
		return results, nil
	}
	conn, err := c.connection(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	if err := c.limitBackoff(org.ID); err != nil {
		return nil, err
	}
	m := conn.Mapping
	if err := m.Validate(); err != nil {
		return nil, err
	}
	pending := buildOps(m, msgs, results)
	var fatal error
	written := false
	for round := 0; len(pending) > 0; round++ {
		out, ok, err := c.sendOps(ctx, org.ID, m, pending)
		written = written || ok
		if err != nil && fatal == nil {
			fatal = err
		}
		var retry []*writeOp
		for i, op := range pending {
			r := out[i]
			if r.err != nil && r.err.Code == CodeUnableToLockRow && round < c.cfg.LockRetries {
				retry = append(retry, op)
				continue
			}
			for _, idx := range op.indexes {
				results[idx] = switchboard.CRMResult{CRMMessageID: r.id}
				if r.err != nil {
					results[idx].Err = r.err
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		if err := c.cfg.Sleep(ctx, c.cfg.Backoff(round+1)); err != nil {
			for _, op := range retry {
				for _, idx := range op.indexes {
					results[idx] = switchboard.CRMResult{CRMMessageID: op.id, Err: &switchboard.CRMError{Code: CodeUnableToLockRow, Message: "record was locked and the call ended before a retry", Retryable: true}}
				}
			}
			break
		}
		pending = retry
	}
	if !written && fatal != nil {
		return nil, fatal
	}
	return results, nil
}

func invalidInput(format string, args ...any) *switchboard.CRMError {
	return &switchboard.CRMError{Code: CodeInvalidInput, Message: fmt.Sprintf(format, args...)}
}

// buildOps turns messages into records; invalid messages get their error
// in results at once.
func buildOps(m Mapping, msgs []switchboard.CRMMessage, results []switchboard.CRMResult) []*writeOp {
	var ops []*writeOp
	updates := map[string]*writeOp{}
	for i, msg := range msgs {
		if msg.CRMMessageID == "" {
			rec, err := createRecord(m, msg)
			if err != nil {
				results[i].Err = err
				continue
			}
			ops = append(ops, &writeOp{indexes: []int{i}, create: true, record: rec})
			continue
		}
		if !ValidID(msg.CRMMessageID) {
			results[i].Err = invalidInput("message %s: CRM message id %q is not a Salesforce record id", msg.MessageID, msg.CRMMessageID)
			continue
		}
		if msg.Status != "" && !msg.Status.Valid() {
			results[i].Err = invalidInput("message %s: unknown status %q", msg.MessageID, msg.Status)
			continue
		}
		u := updateFields{status: msg.Status, debug: msg.Debug, providerID: msg.ProviderMessageID, segments: msg.Segments}
		if op, ok := updates[msg.CRMMessageID]; ok {
			op.upd = mergeUpdate(op.upd, u)
			op.indexes = append(op.indexes, i)
			continue
		}
		op := &writeOp{indexes: []int{i}, id: msg.CRMMessageID, upd: u}
		updates[msg.CRMMessageID] = op
		ops = append(ops, op)
	}
	for _, op := range ops {
		if !op.create {
			op.record = updateRecord(m, op.id, op.upd)
		}
	}
	return ops
}

// mergeUpdate folds a later update into an earlier one: the status only
// moves forward, later non-empty values win.
func mergeUpdate(a, b updateFields) updateFields {
	if b.status != "" && (a.status == "" || a.status.Advances(b.status)) {
		a.status = b.status
	}
	if b.debug != "" {
		a.debug = b.debug
	}
	if b.providerID != "" {
		a.providerID = b.providerID
	}
	if b.segments > 0 {
		a.segments = b.segments
	}
	return a
}

func setField(rec map[string]any, field string, v any) {
	if field != "" {
		rec[field] = v
	}
}

// createRecord maps a new message onto the message object.
func createRecord(m Mapping, msg switchboard.CRMMessage) (map[string]any, *switchboard.CRMError) {
	switch {
	case msg.MessageID == "":
		return nil, invalidInput("message without an id cannot be created")
	case len(msg.MessageID) > 255:
		return nil, invalidInput("message id is longer than 255 characters")
	case !msg.Direction.Valid():
		return nil, invalidInput("message %s: direction must be outgoing or incoming, not %q", msg.MessageID, msg.Direction)
	case !msg.Status.Valid():
		return nil, invalidInput("message %s: unknown status %q", msg.MessageID, msg.Status)
	case msg.OwnerID != "" && !ValidID(msg.OwnerID):
		return nil, invalidInput("message %s: owner %q is not a Salesforce user id", msg.MessageID, msg.OwnerID)
	}
	f := m.Fields
	rec := map[string]any{"attributes": map[string]string{"type": m.MessageObject}}
	setField(rec, f.ExternalID, msg.MessageID)
	setField(rec, f.Direction, string(msg.Direction))
	setField(rec, f.Status, string(msg.Status))
	setField(rec, f.Body, msg.Body)
	if msg.Phone != "" {
		setField(rec, f.Phone, msg.Phone)
	}
	if msg.GatewayNumber != "" {
		setField(rec, f.Gateway, msg.GatewayNumber)
	}
	if msg.OwnerID != "" {
		setField(rec, f.Owner, msg.OwnerID)
	}
	if msg.RecordID != "" {
		if !ValidID(msg.RecordID) {
			return nil, invalidInput("message %s: record %q is not a Salesforce record id", msg.MessageID, msg.RecordID)
		}
		obj, ok := m.recordObjectFor(msg.RecordID)
		if !ok {
			return nil, &switchboard.CRMError{Code: CodeUnmappedRecord, Message: fmt.Sprintf("message %s: no lookup field is mapped for records with id prefix %s; add the object to the Salesforce mapping", msg.MessageID, msg.RecordID[:3])}
		}
		rec[obj.LookupField] = msg.RecordID
	}
	if msg.Debug != "" {
		setField(rec, f.Debug, msg.Debug)
	}
	if msg.Segments > 0 {
		setField(rec, f.Segments, msg.Segments)
	}
	if msg.ProviderMessageID != "" {
		setField(rec, f.ProviderMessageID, msg.ProviderMessageID)
	}
	if msg.BatchID != "" {
		setField(rec, f.BatchID, msg.BatchID)
	}
	return rec, nil
}

// updateRecord maps a message update: status, debug, provider id and
// segments only.
func updateRecord(m Mapping, id string, u updateFields) map[string]any {
	f := m.Fields
	rec := map[string]any{"attributes": map[string]string{"type": m.MessageObject}, "id": id}
	if u.status != "" {
		setField(rec, f.Status, string(u.status))
	}
	if u.debug != "" {
		setField(rec, f.Debug, u.debug)
	}
	if u.providerID != "" {
		setField(rec, f.ProviderMessageID, u.providerID)
	}
	if u.segments > 0 {
		setField(rec, f.Segments, u.segments)
	}
	return rec
}

// chunk is up to 200 ops of one kind, as indexes into the ops slice.
type chunk struct {
	create bool
	idx    []int
}

// sendOps sends ops in as few calls as allowed and returns their results
// in order, whether any call went through, and the first whole-call error.
func (c *Client) sendOps(ctx context.Context, orgID string, m Mapping, ops []*writeOp) ([]opResult, bool, error) {
	var creates, updates []chunk
	for i, op := range ops {
		list := &updates
		if op.create {
			list = &creates
		}
		if n := len(*list); n == 0 || len((*list)[n-1].idx) == collectionSize {
			*list = append(*list, chunk{create: op.create})
		}
		last := &(*list)[len(*list)-1]
		last.idx = append(last.idx, i)
	}
	var groups [][]chunk
	if len(creates) > 0 && len(updates) > 0 {
		all := append(creates, updates...)
		for len(all) > 0 {
			n := min(collectionsPerBatch, len(all))
			groups = append(groups, all[:n])
			all = all[n:]
		}
	} else {
		for _, ch := range append(creates, updates...) {
			groups = append(groups, []chunk{ch})
		}
	}
	out := make([]opResult, len(ops))
	ok := false
	var firstErr, stop *switchboard.CRMError
	for _, g := range groups {
		err := stop
		if err == nil {
			err = c.sendGroup(ctx, orgID, ops, g, out)
		}
		if err == nil {
			ok = true
			continue
		}
		for _, ch := range g {
			for _, i := range ch.idx {
				out[i] = opResult{id: ops[i].id, err: err}
			}
		}
		if firstErr == nil {
			firstErr = err
		}
		if err.Offline || err.Code == CodeRequestLimit {
			stop = err
		}
	}
	if firstErr == nil {
		return out, ok, nil
	}
	return out, ok, firstErr
}

func (ch chunk) body(ops []*writeOp) map[string]any {
	recs := make([]map[string]any, len(ch.idx))
	for j, i := range ch.idx {
		recs[j] = ops[i].record
	}
	return map[string]any{"allOrNone": false, "records": recs}
}

func (ch chunk) method() string {
	if ch.create {
		return http.MethodPost
	}
	return http.MethodPatch
}

// sendGroup makes one call for a group of chunks: an sObject Collections
// request for one chunk, a /composite request for several. It fills out and
// returns an error only when the call as a whole failed.
func (c *Client) sendGroup(ctx context.Context, orgID string, ops []*writeOp, g []chunk, out []opResult) *switchboard.CRMError {
	path := c.dataPath("/composite/sobjects")
	if len(g) == 1 {
		resp, err := c.do(ctx, orgID, apiRequest{method: g[0].method(), url: path, body: g[0].body(ops)})
		if err != nil {
			return asCRMError(err)
		}
		return fillChunk(ops, g[0], resp.body, out)
	}
	subs := make([]map[string]any, len(g))
	for k, ch := range g {
		subs[k] = map[string]any{"method": ch.method(), "url": path, "referenceId": fmt.Sprintf("chunk%d", k), "body": ch.body(ops)}
	}
	resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodPost, url: c.dataPath("/composite"), body: map[string]any{"allOrNone": false, "compositeRequest": subs}})
	if err != nil {
		return asCRMError(err)
	}
	var cr compositeResponse
	if err := json.Unmarshal(resp.body, &cr); err != nil || len(cr.CompositeResponse) != len(g) {
		return badResponse("composite")
	}
	for k, ch := range g {
		sub := cr.CompositeResponse[k]
		if sub.ReferenceID != fmt.Sprintf("chunk%d", k) {
			return badResponse("composite")
		}
		if sub.HTTPStatusCode >= 300 {
			e := parseAPIError(sub.Body)
			if e.Code == "" {
				e.Code = fmt.Sprintf("HTTP_%d", sub.HTTPStatusCode)
			}
			e.Retryable = sub.HTTPStatusCode >= 500 || retryableCode(e.Code)
			for _, i := range ch.idx {
				out[i] = opResult{id: ops[i].id, err: e}
			}
			continue
		}
		if e := fillChunk(ops, ch, sub.Body, out); e != nil {
			return e
		}
	}
	return nil
}

func badResponse(what string) *switchboard.CRMError {
	return &switchboard.CRMError{Code: "BAD_RESPONSE", Message: "Salesforce answered a " + what + " request with an unexpected body", Retryable: true}
}

type compositeResponse struct {
	CompositeResponse []compositeSubresponse `json:"compositeResponse"`
}

type compositeSubresponse struct {
	Body           json.RawMessage `json:"body"`
	HTTPStatusCode int             `json:"httpStatusCode"`
	ReferenceID    string          `json:"referenceId"`
}

// fillChunk maps a collection's SaveResults back onto its ops, in order.
func fillChunk(ops []*writeOp, ch chunk, body []byte, out []opResult) *switchboard.CRMError {
	var res []saveResult
	if err := json.Unmarshal(body, &res); err != nil || len(res) != len(ch.idx) {
		return badResponse("sObject Collections")
	}
	for j, i := range ch.idx {
		r := res[j]
		id := r.ID
		if id == "" {
			id = ops[i].id
		}
		if r.Success {
			out[i] = opResult{id: id}
			continue
		}
		out[i] = opResult{id: ops[i].id, err: recordError(r.Errors)}
	}
	return nil
}

// retryableCode reports whether a Salesforce error code is worth retrying.
func retryableCode(code string) bool {
	switch code {
	case CodeUnableToLockRow, codeRolledBack, CodeRequestLimit, "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION":
		return true
	}
	return false
}

// recordError maps a record's errors: REQUIRED_FIELD_MISSING,
// FIELD_CUSTOM_VALIDATION_EXCEPTION, INVALID_* … are permanent and name the
// fields; UNABLE_TO_LOCK_ROW and a few others are retryable.
func recordError(errs []saveError) *switchboard.CRMError {
	if len(errs) == 0 {
		return &switchboard.CRMError{Code: "UNKNOWN_ERROR", Message: "Salesforce did not save the record and gave no reason", Retryable: true}
	}
	e := &switchboard.CRMError{Code: errs[0].StatusCode}
	var msgs []string
	for _, se := range errs {
		if se.Message != "" {
			msgs = append(msgs, se.Message)
		}
		e.Fields = append(e.Fields, se.Fields...)
	}
	e.Message = strings.Join(msgs, "; ")
	if e.Message == "" {
		e.Message = "Salesforce did not save the record"
	}
	if len(e.Fields) > 0 && !mentionsAll(e.Message, e.Fields) {
		e.Message += " (fields: " + strings.Join(e.Fields, ", ") + ")"
	}
	e.Message = scrub(e.Message)
	e.Retryable = retryableCode(e.Code)
	return e
}

// asCRMError returns err as a CRMError, wrapping other errors (context
// ends, store failures) as retryable.
func asCRMError(err error) *switchboard.CRMError {
	if e, ok := err.(*switchboard.CRMError); ok {
		return e
	}
	return &switchboard.CRMError{Code: CodeUnavailable, Message: scrub(err.Error()), Retryable: true}
}
