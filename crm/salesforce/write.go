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

// Batch limits of sObject Collections and Composite requests: 200
// records a collection, and at most 5 collection subrequests (of at most 25
// subrequests) in one /composite request.
const (
	collectionSize      = 200
	collectionsPerBatch = 5
)

var recordIDRE = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

// ValidID reports whether s looks like a Salesforce record id (15 or 18
// letters and digits).
func ValidID(s string) bool { return recordIDRE.MatchString(s) }

// saveResult is one record's outcome in sObject Collections answers (a
// SaveResult, or an UpsertResult with Created).
type saveResult struct {
	ID      string      `json:"id"`
	Success bool        `json:"success"`
	Created bool        `json:"created"`
	Errors  []saveError `json:"errors"`
}

type saveError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

// writeOp is one record to write: an upsert by external id (extField and
// key set) or an update by record id. Writes of the same record in one
// call are merged into one op that answers for all their indexes.
type writeOp struct {
	indexes  []int
	object   string
	extField string
	key      string
	id       string
	record   map[string]any

	// message ops keep what they were built from, for merging
	msg switchboard.CRMMessage
	upd updateFields
}

func (op *writeOp) upsert() bool { return op.extField != "" }

// path is the sObject Collections resource the op is sent to.
func (op *writeOp) path(c *Client) string {
	if op.upsert() {
		return c.dataPath("/composite/sobjects/%s/%s", op.object, op.extField)
	}
	return c.dataPath("/composite/sobjects")
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

// WriteMessages implements switchboard.CRM: new messages are upserted by
// their external id with sObject Collections (so a retry never makes a
// second record), existing ones updated by record id; both together in one
// /composite request when a call has both; see the package documentation.
func (c *Client) WriteMessages(ctx context.Context, org *switchboard.Org, msgs []switchboard.CRMMessage) ([]switchboard.CRMResult, error) {
	if org == nil {
		return nil, switchboard.FieldError("org", "org is required")
	}
	results := make([]switchboard.CRMResult, len(msgs))
	if len(msgs) == 0 {
		return results, nil
	}
	m, err := c.writeMapping(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	return c.writeResults(ctx, org.ID, buildOps(m, msgs, results), results)
}

// writeMapping returns the org's validated mapping for a write call.
func (c *Client) writeMapping(ctx context.Context, orgID string) (Mapping, error) {
	conn, err := c.connection(ctx, orgID)
	if err != nil {
		return Mapping{}, err
	}
	if err := c.limitBackoff(orgID); err != nil {
		return Mapping{}, err
	}
	if err := conn.Mapping.Validate(); err != nil {
		return Mapping{}, err
	}
	return conn.Mapping, nil
}

// writeResults writes ops and fills results at their indexes; results
// already holding an error (invalid input) stay as they are.
func (c *Client) writeResults(ctx context.Context, orgID string, ops []*writeOp, results []switchboard.CRMResult) ([]switchboard.CRMResult, error) {
	out, err := c.writeAll(ctx, orgID, ops)
	if err != nil {
		return nil, err
	}
	for i, op := range ops {
		for _, idx := range op.indexes {
			results[idx] = switchboard.CRMResult{CRMMessageID: out[i].id}
			if out[i].err != nil {
				results[idx].Err = out[i].err
			}
		}
	}
	return results, nil
}

// writeAll sends ops, retrying records that were locked with back-off,
// and returns one result per op. It fails as a whole only when no call
// went through.
func (c *Client) writeAll(ctx context.Context, orgID string, ops []*writeOp) ([]opResult, error) {
	out := make([]opResult, len(ops))
	pending := make([]int, len(ops))
	for i := range pending {
		pending[i] = i
	}
	var fatal error
	written := false
	for round := 0; len(pending) > 0; round++ {
		batch := make([]*writeOp, len(pending))
		for j, i := range pending {
			batch[j] = ops[i]
		}
		res, ok, err := c.sendOps(ctx, orgID, batch)
		written = written || ok
		if err != nil && fatal == nil {
			fatal = err
		}
		var retry []int
		for j, i := range pending {
			if r := res[j]; r.err != nil && r.err.Code == CodeUnableToLockRow && round < c.cfg.LockRetries {
				retry = append(retry, i)
				continue
			}
			out[i] = res[j]
		}
		if len(retry) == 0 {
			break
		}
		if err := c.cfg.Sleep(ctx, c.cfg.Backoff(round+1)); err != nil {
			for _, i := range retry {
				out[i] = opResult{id: ops[i].id, err: &switchboard.CRMError{Code: CodeUnableToLockRow, Message: "record was locked and the call ended before a retry", Retryable: true}}
			}
			break
		}
		pending = retry
	}
	if !written && fatal != nil {
		return nil, fatal
	}
	return out, nil
}

func invalidInput(format string, args ...any) *switchboard.CRMError {
	return &switchboard.CRMError{Code: CodeInvalidInput, Message: fmt.Sprintf(format, args...)}
}

// buildOps turns messages into records; invalid messages get their error
// in results at once. Creates of the same message id are merged, and so are
// updates of the same record.
func buildOps(m Mapping, msgs []switchboard.CRMMessage, results []switchboard.CRMResult) []*writeOp {
	var ops []*writeOp
	creates := map[string]*writeOp{}
	updates := map[string]*writeOp{}
	for i, msg := range msgs {
		if msg.CRMMessageID == "" {
			if _, err := createRecord(m, msg); err != nil {
				results[i].Err = err
				continue
			}
			if op, ok := creates[msg.MessageID]; ok {
				op.msg = mergeCreate(op.msg, msg)
				op.indexes = append(op.indexes, i)
				continue
			}
			op := &writeOp{indexes: []int{i}, object: m.MessageObject, extField: m.Fields.ExternalID, key: msg.MessageID, msg: msg}
			creates[msg.MessageID] = op
			ops = append(ops, op)
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
		op := &writeOp{indexes: []int{i}, object: m.MessageObject, id: msg.CRMMessageID, upd: u}
		updates[msg.CRMMessageID] = op
		ops = append(ops, op)
	}
	for _, op := range ops {
		if op.upsert() {
			op.record, _ = createRecord(m, op.msg)
		} else {
			op.record = updateRecord(m, op.id, op.upd)
		}
	}
	return ops
}

// mergeCreate folds a later create of the same message into an earlier
// one: the status only moves forward, later non-empty values win.
func mergeCreate(a, b switchboard.CRMMessage) switchboard.CRMMessage {
	status := a.Status
	if a.Status.Advances(b.Status) {
		status = b.Status
	}
	pick := func(x, y string) string {
		if y != "" {
			return y
		}
		return x
	}
	a.Direction = switchboard.Direction(pick(string(a.Direction), string(b.Direction)))
	a.Body = pick(a.Body, b.Body)
	if len(b.MediaURLs) > 0 {
		a.MediaURLs = b.MediaURLs
	}
	a.Phone = pick(a.Phone, b.Phone)
	a.GatewayNumber = pick(a.GatewayNumber, b.GatewayNumber)
	a.OwnerID = pick(a.OwnerID, b.OwnerID)
	a.RecordID = pick(a.RecordID, b.RecordID)
	a.Debug = pick(a.Debug, b.Debug)
	a.ProviderMessageID = pick(a.ProviderMessageID, b.ProviderMessageID)
	a.BatchID = pick(a.BatchID, b.BatchID)
	if b.Segments > 0 {
		a.Segments = b.Segments
	}
	a.Status = status
	return a
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

// createRecord maps a new message onto the message object. Only values
// that are set are sent, so that an upsert that finds the record (a
// retried create) never blanks a field.
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
	for _, v := range []struct{ field, value string }{
		{f.Body, msg.Body}, {f.Phone, msg.Phone}, {f.Gateway, msg.GatewayNumber}, {f.Owner, msg.OwnerID},
		{f.Debug, msg.Debug}, {f.ProviderMessageID, msg.ProviderMessageID}, {f.BatchID, msg.BatchID},
	} {
		if v.value != "" {
			setField(rec, v.field, v.value)
		}
	}
	if media := strings.Join(msg.MediaURLs, "\n"); media != "" {
		setField(rec, f.Media, media)
	}
	if msg.RecordID != "" {
		field, err := recordLookup(m, nil, msg.RecordID, "message "+msg.MessageID)
		if err != nil {
			return nil, err
		}
		rec[field] = msg.RecordID
	}
	if msg.Segments > 0 {
		setField(rec, f.Segments, msg.Segments)
	}
	return rec, nil
}

// recordLookup returns the field that looks up a record by its id's key
// prefix: the message object's lookup (lookups nil), or a click or form
// object's (see lookupField). what names the record being written.
func recordLookup(m Mapping, lookups map[string]string, recordID, what string) (string, *switchboard.CRMError) {
	if !ValidID(recordID) {
		return "", invalidInput("%s: record %q is not a Salesforce record id", what, recordID)
	}
	obj, ok := m.recordObjectFor(recordID)
	if !ok {
		return "", &switchboard.CRMError{Code: CodeUnmappedRecord, Message: fmt.Sprintf("%s: no lookup field is mapped for records with id prefix %s; add the object to the Salesforce mapping", what, recordID[:3])}
	}
	return lookupField(lookups, obj), nil
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

// chunk is up to 200 ops bound for one resource, as indexes into the ops
// slice.
type chunk struct {
	path string
	idx  []int
}

// sendOps sends ops in as few calls as allowed and returns their results
// in order, whether any call went through, and the first whole-call error.
// Ops are cut into sObject Collections of up to 200 records per resource
// (creates and updates go to different resources); a single collection is
// one direct call, and several share /composite requests, five collections
// to a request (Salesforce's limit of collection subrequests; far below its
// 25 subrequests): up to 1,000 records a call.
func (c *Client) sendOps(ctx context.Context, orgID string, ops []*writeOp) ([]opResult, bool, error) {
	var chunks []chunk
	open := map[string]int{} // resource → index of its chunk being filled
	for i, op := range ops {
		p := op.path(c)
		k, ok := open[p]
		if !ok || len(chunks[k].idx) == collectionSize {
			chunks = append(chunks, chunk{path: p})
			k = len(chunks) - 1
			open[p] = k
		}
		chunks[k].idx = append(chunks[k].idx, i)
	}
	var groups [][]chunk
	for all := chunks; len(all) > 0; {
		n := min(collectionsPerBatch, len(all))
		groups = append(groups, all[:n])
		all = all[n:]
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

// sendGroup makes one call for a group of chunks: an sObject Collections
// request for one chunk, a /composite request for several. Every
// collection is a PATCH (an upsert by external id or an update by id), so
// the call may be sent again after a lost answer. It fills out and returns
// an error only when the call as a whole failed.
func (c *Client) sendGroup(ctx context.Context, orgID string, ops []*writeOp, g []chunk, out []opResult) *switchboard.CRMError {
	if len(g) == 1 {
		resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodPatch, url: g[0].path, body: g[0].body(ops)})
		if err != nil {
			return asCRMError(err)
		}
		return fillChunk(ops, g[0], resp.body, out)
	}
	subs := make([]map[string]any, len(g))
	for k, ch := range g {
		subs[k] = map[string]any{"method": http.MethodPatch, "url": ch.path, "referenceId": fmt.Sprintf("chunk%d", k), "body": ch.body(ops)}
	}
	resp, err := c.do(ctx, orgID, apiRequest{method: http.MethodPost, url: c.dataPath("/composite"), body: map[string]any{"allOrNone": false, "compositeRequest": subs}, retrySafe: true})
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
			e := subrequestError(sub.HTTPStatusCode, sub.Body)
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
