package sftest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var versionRE = regexp.MustCompile(`^v[0-9]{2,3}\.[0-9]$`)

// route serves a data API call (top-level or a composite subrequest); the
// caller has authenticated it.
func (s *Server) route(method, path, soql string, body []byte, userID string) *response {
	parts := strings.SplitN(strings.TrimPrefix(path, "/services/data/"), "/", 2)
	ver := parts[0]
	if !versionRE.MatchString(ver) {
		return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
	rest := "/"
	if len(parts) == 2 {
		rest = "/" + parts[1]
	}
	base := "/services/data/" + ver
	switch {
	case rest == "/":
		if method != http.MethodGet {
			return notAllowed(method)
		}
		return jsonResponse(http.StatusOK, map[string]string{"sobjects": base + "/sobjects", "query": base + "/query", "composite": base + "/composite"})
	case rest == "/limits" || rest == "/limits/":
		if method != http.MethodGet {
			return notAllowed(method)
		}
		return jsonResponse(http.StatusOK, map[string]any{
			"DailyApiRequests":                  map[string]int{"Max": s.apiMax, "Remaining": max(s.apiMax-s.apiUsed, 0)},
			"DailyBulkApiBatches":               map[string]int{"Max": 15000, "Remaining": 15000},
			"ConcurrentAsyncGetReportInstances": map[string]int{"Max": 200, "Remaining": 200},
		})
	case rest == "/query" || rest == "/query/":
		if method != http.MethodGet {
			return notAllowed(method)
		}
		return s.query(ver, soql)
	case strings.HasPrefix(rest, "/query/"):
		if method != http.MethodGet {
			return notAllowed(method)
		}
		return s.queryMore(ver, strings.TrimPrefix(rest, "/query/"))
	case rest == "/composite/sobjects":
		switch method {
		case http.MethodPost:
			return s.collections(ver, true, body, userID)
		case http.MethodPatch:
			return s.collections(ver, false, body, userID)
		}
		return notAllowed(method)
	case strings.HasPrefix(rest, "/composite/sobjects/"):
		seg := strings.Split(strings.TrimPrefix(rest, "/composite/sobjects/"), "/")
		if len(seg) != 2 {
			return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		}
		if method != http.MethodPatch {
			return notAllowed(method)
		}
		return s.upsertCollection(seg[0], seg[1], body, userID)
	case rest == "/composite":
		if method != http.MethodPost {
			return notAllowed(method)
		}
		return s.composite(body, userID)
	case strings.HasPrefix(rest, "/sobjects/"):
		return s.sobjects(ver, method, strings.Split(strings.TrimPrefix(rest, "/sobjects/"), "/"), body, userID)
	}
	return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func notAllowed(method string) *response {
	return errorResponse(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are GET,PATCH,POST", method)
}

func saveErrorsResponse(status int, errs []saveErr) *response {
	out := make([]apiError, len(errs))
	for i, e := range errs {
		out[i] = apiError{Message: e.Message, ErrorCode: e.StatusCode, Fields: e.Fields}
	}
	return jsonResponse(status, out)
}

func (s *Server) object(name string) (*object, *response) {
	obj := s.objects[strings.ToLower(name)]
	if obj == nil {
		return nil, errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
	return obj, nil
}

func decodeFields(body []byte) (map[string]any, *response) {
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, errorResponse(http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not a JSON object")
	}
	return fields, nil
}

func (s *Server) sobjects(ver, method string, seg []string, body []byte, userID string) *response {
	obj, resp := s.object(seg[0])
	if resp != nil {
		return resp
	}
	switch {
	case len(seg) == 1 && method == http.MethodPost:
		fields, resp := decodeFields(body)
		if resp != nil {
			return resp
		}
		id, errs := s.insertLocked(obj, withOwner(fields, userID), "")
		if len(errs) > 0 {
			return saveErrorsResponse(http.StatusBadRequest, errs)
		}
		r := jsonResponse(http.StatusCreated, map[string]any{"id": id, "success": true, "errors": []any{}})
		r.header.Set("Location", "/services/data/"+ver+"/sobjects/"+obj.name+"/"+id)
		return r
	case len(seg) == 2 && seg[1] == "describe" && method == http.MethodGet:
		return s.describe(ver, obj)
	case len(seg) == 2:
		rec, e := s.lookupRecord(obj, seg[1])
		if e != nil {
			return errorResponse(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		}
		switch method {
		case http.MethodGet:
			out := map[string]any{"attributes": map[string]string{"type": obj.name, "url": "/services/data/" + ver + "/sobjects/" + obj.name + "/" + rec.id}}
			for _, name := range obj.order {
				out[name] = rec.get(name)
			}
			return jsonResponse(http.StatusOK, out)
		case http.MethodPatch:
			fields, resp := decodeFields(body)
			if resp != nil {
				return resp
			}
			if errs := s.updateLocked(rec, fields); len(errs) > 0 {
				return saveErrorsResponse(http.StatusBadRequest, errs)
			}
			return &response{status: http.StatusNoContent}
		case http.MethodDelete:
			delete(s.records, rec.id)
			return &response{status: http.StatusNoContent}
		}
		return notAllowed(method)
	case len(seg) == 3 && method == http.MethodPatch:
		return s.upsert(obj, seg[1], seg[2], body, userID)
	}
	return notAllowed(method)
}

func withOwner(fields map[string]any, userID string) map[string]any {
	for k := range fields {
		if strings.EqualFold(k, "OwnerId") {
			return fields
		}
	}
	out := map[string]any{"OwnerId": userID}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// upsert serves PATCH /sobjects/{obj}/{externalIdField}/{value}.
func (s *Server) upsert(obj *object, fieldName, rawValue string, body []byte, userID string) *response {
	f := obj.fields[strings.ToLower(fieldName)]
	if f == nil || !f.ExternalID {
		return errorResponse(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s", fieldName)
	}
	value, err := url.PathUnescape(rawValue)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "MALFORMED_ID", "bad external id value")
	}
	fields, resp := decodeFields(body)
	if resp != nil {
		return resp
	}
	id, created, errs := s.upsertLocked(obj, f, value, fields, userID)
	switch {
	case len(errs) > 0 && errs[0].StatusCode == "MULTIPLE_CHOICES":
		return errorResponse(http.StatusMultipleChoices, "MULTIPLE_CHOICES", "more than one record has the external id")
	case len(errs) > 0:
		return saveErrorsResponse(http.StatusBadRequest, errs)
	case created:
		return jsonResponse(http.StatusCreated, map[string]any{"id": id, "success": true, "errors": []any{}, "created": true})
	}
	return jsonResponse(http.StatusOK, map[string]any{"id": id, "success": true, "errors": []any{}, "created": false})
}

// upsertLocked creates the record of obj whose external id field f has
// value, or updates it when there is one; more than one is an error
// (MULTIPLE_CHOICES).
func (s *Server) upsertLocked(obj *object, f *Field, value string, fields map[string]any, userID string) (string, bool, []saveErr) {
	var matches []*record
	for _, r := range s.records {
		if r.obj == obj && fmt.Sprint(r.vals[f.Name]) == value {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 0:
		fields = withOwner(fields, userID)
		fields[f.Name] = value
		id, errs := s.insertLocked(obj, fields, "")
		return id, len(errs) == 0, errs
	case 1:
		if errs := s.updateLocked(matches[0], fields); len(errs) > 0 {
			return "", false, errs
		}
		return matches[0].id, false, nil
	}
	ids := make([]string, len(matches))
	for i, r := range matches {
		ids[i] = r.id
	}
	sort.Strings(ids)
	return "", false, []saveErr{{StatusCode: "MULTIPLE_CHOICES", Message: fmt.Sprintf("more than one record found for external id field: %v", ids), Fields: []string{f.Name}}}
}

// upsertCollection serves sObject Collections upsert, PATCH
// /composite/sobjects/{obj}/{externalIdField}: up to 200 records of that
// object, each created or updated by its external id value, answered with
// UpsertResults in order ("created" tells which). An external id given twice
// in one request fails both records with DUPLICATE_VALUE; one that matches
// several records fails with DUPLICATE_EXTERNAL_ID.
func (s *Server) upsertCollection(objectName, fieldName string, body []byte, userID string) *response {
	obj, resp := s.object(objectName)
	if resp != nil {
		return resp
	}
	f := obj.fields[strings.ToLower(fieldName)]
	if f == nil || !f.ExternalID {
		return errorResponse(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s", fieldName)
	}
	var req struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse(http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not valid JSON for sObject Collections")
	}
	if len(req.Records) == 0 {
		return errorResponse(http.StatusBadRequest, "INVALID_FIELD", "records: the list is empty")
	}
	if len(req.Records) > 200 {
		return errorResponse(http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
	}
	keyOf := func(rec map[string]any) string {
		for k, v := range rec {
			if strings.EqualFold(k, f.Name) && v != nil {
				return fmt.Sprint(v)
			}
		}
		return ""
	}
	count := map[string]int{}
	for _, rec := range req.Records {
		count[keyOf(rec)]++
	}
	var restore func()
	if req.AllOrNone {
		restore = s.snapshot()
	}
	results := make([]map[string]any, len(req.Records))
	failed := false
	for i, rec := range req.Records {
		id, created, errs := s.upsertRecord(obj, f, keyOf(rec), count, rec, userID)
		res := map[string]any{"success": len(errs) == 0, "errors": errs, "created": created}
		if len(errs) == 0 {
			res["id"] = id
			res["errors"] = []saveErr{}
		} else {
			failed = true
		}
		results[i] = res
	}
	if failed && restore != nil {
		restore()
		for _, res := range results {
			if res["success"] == true {
				res["success"], res["created"] = false, false
				res["errors"] = []saveErr{{StatusCode: "ALL_OR_NONE_OPERATION_ROLLED_BACK", Message: "Record rolled back because not all records were valid and the request was using AllOrNone header", Fields: []string{}}}
				delete(res, "id")
			}
		}
	}
	return jsonResponse(http.StatusOK, results)
}

func (s *Server) upsertRecord(obj *object, f *Field, key string, count map[string]int, rec map[string]any, userID string) (string, bool, []saveErr) {
	attrs, _ := rec["attributes"].(map[string]any)
	if typ, _ := attrs["type"].(string); !strings.EqualFold(typ, obj.name) {
		return "", false, []saveErr{{StatusCode: "INVALID_INPUT", Message: fmt.Sprintf("the record's type %q is not %s, the object of the request URI", typ, obj.name), Fields: []string{}}}
	}
	for k := range rec {
		if strings.EqualFold(k, "id") {
			return "", false, []saveErr{{StatusCode: "INVALID_FIELD", Message: "record ids are not supported in an upsert by external id; use the external id field", Fields: []string{"Id"}}}
		}
	}
	switch {
	case key == "":
		return "", false, []saveErr{{StatusCode: "MISSING_ARGUMENT", Message: f.Name + " not specified", Fields: []string{f.Name}}}
	case count[key] > 1:
		return "", false, []saveErr{{StatusCode: "DUPLICATE_VALUE", Message: "Duplicate external id specified: " + key, Fields: []string{f.Name}}}
	}
	id, created, errs := s.upsertLocked(obj, f, key, rec, userID)
	if len(errs) > 0 && errs[0].StatusCode == "MULTIPLE_CHOICES" {
		errs[0].StatusCode = "DUPLICATE_EXTERNAL_ID"
	}
	return id, created, errs
}

func (s *Server) describe(ver string, obj *object) *response {
	fields := make([]map[string]any, 0, len(obj.order))
	for _, name := range obj.order {
		f := obj.fields[strings.ToLower(name)]
		fields = append(fields, map[string]any{
			"name": f.Name, "type": f.Type, "createable": f.Createable, "updateable": f.Updateable,
			"nillable": !f.Required, "externalId": f.ExternalID, "idLookup": f.ExternalID || f.Name == "Id",
		})
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"name": obj.name, "keyPrefix": obj.prefix, "createable": true, "updateable": true, "queryable": true,
		"urls":   map[string]string{"describe": "/services/data/" + ver + "/sobjects/" + obj.name + "/describe"},
		"fields": fields,
	})
}

// collections serves sObject Collections create (POST) and update (PATCH).
func (s *Server) collections(ver string, create bool, body []byte, userID string) *response {
	var req struct {
		AllOrNone bool             `json:"allOrNone"`
		Records   []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse(http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not valid JSON for sObject Collections")
	}
	if len(req.Records) == 0 {
		return errorResponse(http.StatusBadRequest, "INVALID_FIELD", "records: the list is empty")
	}
	if len(req.Records) > 200 {
		return errorResponse(http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
	}
	var restore func()
	if req.AllOrNone {
		restore = s.snapshot()
	}
	results := make([]map[string]any, len(req.Records))
	failed := false
	for i, rec := range req.Records {
		id, errs := s.collectionRecord(create, rec, userID)
		res := map[string]any{"success": len(errs) == 0, "errors": errs}
		if id != "" {
			res["id"] = id
		}
		if errs == nil {
			res["errors"] = []saveErr{}
		} else {
			failed = true
		}
		results[i] = res
	}
	if failed && restore != nil {
		restore()
		for _, res := range results {
			if res["success"] == true {
				res["success"] = false
				res["errors"] = []saveErr{{StatusCode: "ALL_OR_NONE_OPERATION_ROLLED_BACK", Message: "Record rolled back because not all records were valid and the request was using AllOrNone header", Fields: []string{}}}
				if create {
					delete(res, "id")
				}
			}
		}
	}
	return jsonResponse(http.StatusOK, results)
}

func (s *Server) collectionRecord(create bool, rec map[string]any, userID string) (string, []saveErr) {
	attrs, _ := rec["attributes"].(map[string]any)
	typ, _ := attrs["type"].(string)
	obj := s.objects[strings.ToLower(typ)]
	if obj == nil {
		return "", []saveErr{{StatusCode: "INVALID_TYPE", Message: fmt.Sprintf("sObject type '%s' is not supported", typ), Fields: []string{}}}
	}
	id, _ := rec["id"].(string)
	if id == "" {
		id, _ = rec["Id"].(string)
	}
	if create {
		if id != "" {
			return "", []saveErr{{StatusCode: "INVALID_FIELD", Message: "cannot specify Id in an insert call", Fields: []string{"Id"}}}
		}
		return s.insertLocked(obj, withOwner(rec, userID), "")
	}
	if id == "" {
		return "", []saveErr{{StatusCode: "MISSING_ARGUMENT", Message: "Id not specified in an update call", Fields: []string{"Id"}}}
	}
	r, e := s.lookupRecord(obj, id)
	if e != nil {
		return id, []saveErr{*e}
	}
	if errs := s.updateLocked(r, rec); len(errs) > 0 {
		return r.id, errs
	}
	return r.id, nil
}

var refRE = regexp.MustCompile(`@\{([A-Za-z0-9_]+)\.([A-Za-z0-9_.]+)\}`)

// composite serves POST /composite: subrequests in order, with
// @{referenceId.field} references to earlier results.
func (s *Server) composite(body []byte, userID string) *response {
	var req struct {
		AllOrNone        bool `json:"allOrNone"`
		CompositeRequest []struct {
			Method      string          `json:"method"`
			URL         string          `json:"url"`
			ReferenceID string          `json:"referenceId"`
			Body        json.RawMessage `json:"body"`
		} `json:"compositeRequest"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse(http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not valid JSON for Composite")
	}
	if n := len(req.CompositeRequest); n == 0 || n > 25 {
		return errorResponse(http.StatusBadRequest, "INVALID_INPUT", "a composite request must have 1 to 25 subrequests, not %d", n)
	}
	heavy := 0
	seen := map[string]bool{}
	for _, sub := range req.CompositeRequest {
		if strings.Contains(sub.URL, "/composite/sobjects") || strings.Contains(sub.URL, "/query") {
			heavy++
		}
		if sub.ReferenceID == "" || seen[sub.ReferenceID] {
			return errorResponse(http.StatusBadRequest, "INVALID_INPUT", "referenceId %q is missing or not unique", sub.ReferenceID)
		}
		seen[sub.ReferenceID] = true
	}
	if heavy > 5 {
		return errorResponse(http.StatusBadRequest, "INVALID_INPUT", "a composite request can have at most 5 sObject Collections or query subrequests, not %d", heavy)
	}
	var restore func()
	if req.AllOrNone {
		restore = s.snapshot()
	}
	type result struct {
		Body           any               `json:"body"`
		HTTPHeaders    map[string]string `json:"httpHeaders"`
		HTTPStatusCode int               `json:"httpStatusCode"`
		ReferenceID    string            `json:"referenceId"`
	}
	results := make([]result, len(req.CompositeRequest))
	bodies := map[string]any{}
	failed := false
	for i, sub := range req.CompositeRequest {
		res := result{HTTPHeaders: map[string]string{}, ReferenceID: sub.ReferenceID}
		u, uerr := resolveRefs(sub.URL, bodies, false)
		b, berr := resolveRefs(string(sub.Body), bodies, true)
		var resp *response
		switch {
		case uerr != nil || berr != nil:
			e := uerr
			if e == nil {
				e = berr
			}
			resp = errorResponse(http.StatusBadRequest, "PROCESSING_HALTED", "Invalid reference specified. %v", e)
		case !strings.HasPrefix(u, "/services/data/"):
			resp = errorResponse(http.StatusBadRequest, "INVALID_INPUT", "subrequest url must start with /services/data/")
		default:
			pu, err := url.Parse(u)
			if err != nil {
				resp = errorResponse(http.StatusBadRequest, "INVALID_INPUT", "subrequest url is not a URL")
				break
			}
			resp = s.route(sub.Method, pu.EscapedPath(), pu.Query().Get("q"), []byte(b), userID)
		}
		res.HTTPStatusCode = resp.status
		if loc := resp.header.Get("Location"); loc != "" {
			res.HTTPHeaders["Location"] = loc
		}
		if len(resp.body) > 0 {
			var parsed any
			_ = json.Unmarshal(resp.body, &parsed)
			res.Body = parsed
			if resp.status < 300 {
				bodies[sub.ReferenceID] = parsed
			}
		}
		if resp.status >= 300 {
			failed = true
		}
		results[i] = res
	}
	if failed && restore != nil {
		restore()
		for i := range results {
			if results[i].HTTPStatusCode < 300 {
				results[i].HTTPStatusCode = http.StatusBadRequest
				results[i].HTTPHeaders = map[string]string{}
				results[i].Body = []apiError{{ErrorCode: "PROCESSING_HALTED", Message: "The transaction was rolled back since another operation in the same transaction failed."}}
			}
		}
	}
	return jsonResponse(http.StatusOK, map[string]any{"compositeResponse": results})
}

// resolveRefs replaces @{ref.path} with values from earlier subrequest
// answers; inJSON escapes them for a JSON string.
func resolveRefs(s string, bodies map[string]any, inJSON bool) (string, error) {
	var firstErr error
	out := refRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := refRE.FindStringSubmatch(m)
		v, ok := bodies[sm[1]]
		for _, key := range strings.Split(sm[2], ".") {
			if !ok {
				break
			}
			obj, isMap := v.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			v, ok = obj[key]
		}
		if !ok || v == nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("No value for %s.%s found in %s", sm[1], sm[2], sm[1])
			}
			return m
		}
		str := fmt.Sprint(v)
		if inJSON {
			b, _ := json.Marshal(str)
			return string(b[1 : len(b)-1])
		}
		return url.PathEscape(str)
	})
	return out, firstErr
}

// query runs a SOQL query and answers its first batch.
func (s *Server) query(ver, q string) *response {
	if strings.TrimSpace(q) == "" {
		return errorResponse(http.StatusBadRequest, "MALFORMED_QUERY", "q parameter is required")
	}
	if len(q) > MaxSOQLLength {
		return errorResponse(http.StatusBadRequest, "MALFORMED_QUERY", "SOQL statements cannot be longer than %d characters", MaxSOQLLength)
	}
	parsed, err := ParseSOQL(q)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "MALFORMED_QUERY", "%v", err)
	}
	obj := s.objects[strings.ToLower(parsed.Object)]
	if obj == nil {
		return errorResponse(http.StatusBadRequest, "INVALID_TYPE", "sObject type '%s' is not supported.", parsed.Object)
	}
	fields := make([]string, len(parsed.Fields))
	check := append(append([]string{}, parsed.Fields...), exprFields(parsed.Where)...)
	for _, ob := range parsed.OrderBy {
		check = append(check, ob.Field)
	}
	for _, f := range check {
		if _, ok := obj.fields[strings.ToLower(f)]; !ok {
			return errorResponse(http.StatusBadRequest, "INVALID_FIELD", "No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.", f, obj.name)
		}
	}
	for i, f := range parsed.Fields {
		fields[i] = obj.fields[strings.ToLower(f)].Name
	}
	var recs []*record
	for _, r := range s.records {
		if r.obj == obj && (parsed.Where == nil || parsed.Where.match(r.get)) {
			recs = append(recs, r)
		}
	}
	sort.SliceStable(recs, func(i, j int) bool {
		for _, ob := range parsed.OrderBy {
			c := compare(recs[i].get(ob.Field), recs[j].get(ob.Field))
			if c != 0 {
				return (c < 0) != ob.Desc
			}
		}
		if len(parsed.OrderBy) > 0 && parsed.OrderBy[len(parsed.OrderBy)-1].Desc {
			return recs[i].seq > recs[j].seq
		}
		return recs[i].seq < recs[j].seq
	})
	if parsed.Limit >= 0 && len(recs) > parsed.Limit {
		recs = recs[:parsed.Limit]
	}
	rows := make([]map[string]any, len(recs))
	for i, r := range recs {
		row := map[string]any{"attributes": map[string]string{"type": obj.name, "url": "/services/data/" + ver + "/sobjects/" + obj.name + "/" + r.id}}
		for _, f := range fields {
			row[f] = r.get(f)
		}
		rows[i] = row
	}
	locator := strings.Replace(s.newID("01g"), "01gRS", "01gQL", 1)
	s.cursors[locator] = rows
	return s.page(ver, locator, 0)
}

func exprFields(e *Expr) []string {
	if e == nil {
		return nil
	}
	out := []string{}
	if e.Field != "" {
		out = append(out, e.Field)
	}
	for _, a := range e.Args {
		out = append(out, exprFields(a)...)
	}
	return out
}

// queryMore answers GET /query/{locator}-{offset}.
func (s *Server) queryMore(ver, tail string) *response {
	locator, off, ok := strings.Cut(tail, "-")
	n, err := strconv.Atoi(off)
	if _, known := s.cursors[locator]; !ok || err != nil || !known || n < 0 {
		return errorResponse(http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
	}
	return s.page(ver, locator, n)
}

func (s *Server) page(ver, locator string, offset int) *response {
	rows := s.cursors[locator]
	offset = min(offset, len(rows))
	end := min(offset+s.pageSize, len(rows))
	out := map[string]any{"totalSize": len(rows), "done": end >= len(rows), "records": rows[offset:end]}
	if end < len(rows) {
		out["nextRecordsUrl"] = fmt.Sprintf("/services/data/%s/query/%s-%d", ver, locator, end)
	} else {
		delete(s.cursors, locator)
	}
	return jsonResponse(http.StatusOK, out)
}
