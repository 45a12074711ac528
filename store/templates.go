package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Template is an org's stored SMS template (package template parses and
// renders it).
type Template struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	Body      string    `json:"body"`
	CreatedBy string    `json:"created_by"`
	UpdatedBy string    `json:"updated_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const templateCols = `id, org_id, name, body, created_by, updated_by, created_at, updated_at`

func scanTemplate(r row) (*Template, error) {
	var t Template
	var created, updated int64
	if err := r.Scan(&t.ID, &t.OrgID, &t.Name, &t.Body, &t.CreatedBy, &t.UpdatedBy, &created, &updated); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

func templateNameTaken(err error, name string) error {
	if errors.Is(err, errUnique) {
		return &sb.Error{Code: sb.EConflict, Field: "name", Message: fmt.Sprintf("a template named %q exists already", name)}
	}
	return err
}

// CreateTemplate stores a new template; ID and times are set. A name used
// by another template of the org is an EConflict error.
func (tx *Tx) CreateTemplate(ctx context.Context, t *Template) error {
	t.ID = NewID()
	t.CreatedAt = tx.db.now().UTC()
	t.UpdatedAt = t.CreatedAt
	_, err := tx.q.exec(ctx, `INSERT INTO templates (id, org_id, name, body, created_by, updated_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, t.ID, t.OrgID, t.Name, t.Body, t.CreatedBy, t.UpdatedBy, micros(t.CreatedAt))
	return templateNameTaken(err, t.Name)
}

// UpdateTemplate replaces a template's name and body.
func (tx *Tx) UpdateTemplate(ctx context.Context, t *Template) error {
	t.UpdatedAt = tx.db.now().UTC()
	n, err := tx.q.exec(ctx, `UPDATE templates SET name = $3, body = $4, updated_by = $5, updated_at = $6 WHERE id = $1 AND org_id = $2`,
		t.ID, t.OrgID, t.Name, t.Body, t.UpdatedBy, micros(t.UpdatedAt))
	if err != nil {
		return templateNameTaken(err, t.Name)
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "template %s not found", t.ID)
	}
	return nil
}

// DeleteTemplate deletes a template of an org.
func (tx *Tx) DeleteTemplate(ctx context.Context, orgID, id string) error {
	n, err := tx.q.exec(ctx, `DELETE FROM templates WHERE id = $1 AND org_id = $2`, id, orgID)
	if err == nil && n == 0 {
		return sb.Errorf(sb.ENotFound, "template %s not found", id)
	}
	return err
}

// Template returns a template of an org.
func (db *DB) Template(ctx context.Context, orgID, id string) (*Template, error) {
	return getTemplate(ctx, db.reader(), orgID, id)
}

// Template returns a template of an org inside a transaction.
func (tx *Tx) Template(ctx context.Context, orgID, id string) (*Template, error) {
	return getTemplate(ctx, tx.q, orgID, id)
}

func getTemplate(ctx context.Context, q querier, orgID, id string) (*Template, error) {
	t, err := scanTemplate(q.queryRow(ctx, `SELECT `+templateCols+` FROM templates WHERE id = $1 AND org_id = $2`, id, orgID))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "template %s not found", id)
	}
	return t, err
}

// Templates lists an org's templates by name.
func (db *DB) Templates(ctx context.Context, orgID string) ([]*Template, error) {
	rs, err := db.reader().query(ctx, `SELECT `+templateCols+` FROM templates WHERE org_id = $1 ORDER BY name, id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []*Template{}
	for rs.Next() {
		t, err := scanTemplate(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rs.Err()
}
