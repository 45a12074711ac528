package hub

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// OptOutLister is implemented by CRMs that can list the records whose
// global opt-out flag is set.
type OptOutLister interface {
	OptedOutRecords(ctx context.Context, org *sb.Org, fn func(sb.CRMRecord) error) error
}

// ImportResult reports an import of legacy opt-outs.
type ImportResult struct {
	// Imported subscriptions were set to Opt-Out; Already were Opt-Out or
	// applied by an earlier import (and left as they are now).
	Imported int           `json:"imported"`
	Already  int           `json:"already"`
	Rejected []ImportError `json:"rejected"`
}

// ImportError names a rejected row.
type ImportError struct {
	Line     int    `json:"line,omitempty"`
	RecordID string `json:"record_id,omitempty"`
	Reason   string `json:"reason"`
}

// legacyOptOut is one number to opt out, on one gateway or all.
type legacyOptOut struct {
	phone, gatewayID, detail string
}

// MaxImportRows bounds one CSV import.
const MaxImportRows = 200_000

// ImportOptOutsCSV migrates legacy opt-out flags into gateway subscriptions
// from CSV with a header row: phone (required), gateway_id (empty: every
// gateway of the org), detail (default "Imported legacy opt-out"). Numbers
// already opted out are left as they are. The import can run again safely:
// a (gateway, number) an earlier import applied (its history entry with via
// "import") is skipped, so a number that texted START since stays opted in.
// Needs System Admin.
func (h *Hub) ImportOptOutsCSV(ctx context.Context, user *sb.User, r io.Reader) (*ImportResult, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, sb.Errorf(sb.EInvalid, "CSV needs a header row with a phone column")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["phone"]; !ok {
		return nil, sb.Errorf(sb.EInvalid, "CSV header must have a phone column (found: %s)", strings.Join(header, ", "))
	}
	res := &ImportResult{Rejected: []ImportError{}}
	var rows []legacyOptOut
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			res.Rejected = append(res.Rejected, ImportError{Line: line, Reason: err.Error()})
			continue
		}
		if len(rows) >= MaxImportRows {
			return nil, sb.Errorf(sb.EInvalid, "CSV has more than %d rows; split it", MaxImportRows)
		}
		phone, err := sb.ParsePhone(get(rec, "phone"), org.Settings.DefaultRegion)
		if err != nil {
			res.Rejected = append(res.Rejected, ImportError{Line: line, Reason: sb.ErrorMessage(err)})
			continue
		}
		rows = append(rows, legacyOptOut{phone: phone, gatewayID: get(rec, "gateway_id"), detail: get(rec, "detail")})
	}
	return res, h.importOptOuts(ctx, org, user, rows, res)
}

// ImportOptOutsFromCRM migrates the CRM records' global opt-out flags into
// Opt-Out subscriptions on every gateway of the org (the global flag itself
// stays in force). Idempotent, like ImportOptOutsCSV.
func (h *Hub) ImportOptOutsFromCRM(ctx context.Context, user *sb.User) (*ImportResult, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	crm, err := h.CRMs.For(ctx, org)
	if err != nil {
		return nil, err
	}
	lister, ok := crm.(OptOutLister)
	if !ok {
		return nil, sb.Errorf(sb.EInvalid, "this org's CRM cannot list opted-out records")
	}
	res := &ImportResult{Rejected: []ImportError{}}
	var rows []legacyOptOut
	err = lister.OptedOutRecords(ctx, org, func(r sb.CRMRecord) error {
		phone, err := sb.ParsePhone(r.Phone, org.Settings.DefaultRegion)
		if err != nil {
			res.Rejected = append(res.Rejected, ImportError{RecordID: r.ID, Reason: sb.ErrorMessage(err)})
			return nil
		}
		rows = append(rows, legacyOptOut{phone: phone})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, h.importOptOuts(ctx, org, user, rows, res)
}

func (h *Hub) importOptOuts(ctx context.Context, org *sb.Org, user *sb.User, rows []legacyOptOut, res *ImportResult) error {
	gws, err := h.DB.Gateways(ctx, org.ID)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var all []string
	for _, g := range gws {
		known[g.ID] = true
		if g.Active {
			all = append(all, g.ID)
		}
	}
	const chunk = 1000
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		imported, already := 0, 0
		err := h.DB.Tx(ctx, func(tx *store.Tx) error {
			imported, already = 0, 0
			hashes := make([][]byte, len(part))
			for i, r := range part {
				hashes[i] = h.hash(r.phone)
			}
			// What an earlier run applied is skipped: a number that texted
			// START since stays opted in.
			done, err := tx.Imported(ctx, org.ID, hashes)
			if err != nil {
				return err
			}
			for i, r := range part {
				targets := all
				if r.gatewayID != "" {
					if !known[r.gatewayID] {
						continue // reported below, outside the transaction
					}
					targets = []string{r.gatewayID}
				}
				hash := hashes[i]
				for _, gw := range targets {
					key := store.ImportKey(gw, hash)
					if done[key] {
						already++
						continue
					}
					done[key] = true
					detail := r.detail
					if detail == "" {
						detail = sb.DetailImported
					}
					s := &sb.Subscription{OrgID: org.ID, GatewayID: gw, PhoneHash: hash, Status: sb.OptedOut, Detail: detail, Via: sb.ViaImport, UpdatedBy: user.ID}
					cur, err := tx.Subscription(ctx, gw, hash)
					if err != nil {
						return err
					}
					if cur != nil && cur.Status == sb.OptedOut {
						// Already opted out: only noted in the history, so
						// that a later run leaves the number alone too.
						if err := tx.AddSubscriptionEvent(ctx, s); err != nil {
							return err
						}
						already++
						continue
					}
					if err := h.setSubscriptionTx(ctx, tx, s); err != nil {
						return err
					}
					imported++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Imported += imported
		res.Already += already
		for _, r := range part {
			if r.gatewayID != "" && !known[r.gatewayID] {
				res.Rejected = append(res.Rejected, ImportError{Reason: "unknown gateway " + r.gatewayID})
			}
		}
	}
	return nil
}
