package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"

	sb "github.com/switchboard/switchboard"
)

// NewID returns a new time-ordered unique id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// CreateOrg stores a new org.
func (tx *Tx) CreateOrg(ctx context.Context, o *sb.Org) error {
	if err := o.Settings.Normalize(); err != nil {
		return err
	}
	if strings.TrimSpace(o.Name) == "" {
		return sb.FieldError("name", "org name is required")
	}
	if o.ID == "" {
		o.ID = NewID()
	}
	o.CreatedAt = tx.db.now().UTC()
	settings, _ := json.Marshal(o.Settings)
	_, err := tx.q.exec(ctx, `INSERT INTO orgs (id, name, settings, created_at) VALUES ($1, $2, $3, $4)`,
		o.ID, o.Name, string(settings), micros(o.CreatedAt))
	return err
}

// UpdateOrgSettings replaces an org's settings.
func (tx *Tx) UpdateOrgSettings(ctx context.Context, orgID string, s sb.OrgSettings) error {
	if err := s.Normalize(); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	n, err := tx.q.exec(ctx, `UPDATE orgs SET settings = $2 WHERE id = $1`, orgID, string(b))
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "org %s not found", orgID)
	}
	return nil
}

// Org returns an org by id.
func (db *DB) Org(ctx context.Context, id string) (*sb.Org, error) {
	return getOrg(ctx, db.reader(), id)
}

// Org returns an org by id within the transaction.
func (tx *Tx) Org(ctx context.Context, id string) (*sb.Org, error) { return getOrg(ctx, tx.q, id) }

func getOrg(ctx context.Context, q querier, id string) (*sb.Org, error) {
	var o sb.Org
	var settings string
	var created int64
	err := q.queryRow(ctx, `SELECT id, name, settings, created_at FROM orgs WHERE id = $1`, id).Scan(&o.ID, &o.Name, &settings, &created)
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "org %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &o.Settings); err != nil {
		return nil, err
	}
	_ = o.Settings.Normalize()
	o.CreatedAt = fromMicros(created)
	return &o, nil
}

// Orgs lists every org.
func (db *DB) Orgs(ctx context.Context) ([]*sb.Org, error) {
	rs, err := db.reader().query(ctx, `SELECT id FROM orgs ORDER BY created_at`)
	if err != nil {
		return nil, err
	}
	ids, err := scanStrings(rs)
	if err != nil {
		return nil, err
	}
	out := make([]*sb.Org, 0, len(ids))
	for _, id := range ids {
		o, err := db.Org(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func scanStrings(rs rows) ([]string, error) {
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// --- users ---

const userCols = `id, org_id, email, name, permissions, COALESCE(crm_user_id, ''), operator, created_at, gateway_ids`

func scanUser(r row, extra ...any) (*sb.User, error) {
	var u sb.User
	var perms, gws string
	var created int64
	if err := r.Scan(append([]any{&u.ID, &u.OrgID, &u.Email, &u.Name, &perms, &u.CRMUserID, &u.Operator, &created, &gws}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &u.Permissions); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(gws), &u.GatewayIDs); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// checkUser validates a user's permission sets and gateways (each one a
// gateway of the user's org) and returns them as stored.
func (tx *Tx) checkUser(ctx context.Context, u *sb.User) (perms, gateways string, err error) {
	for _, p := range u.Permissions {
		if _, err := sb.ParsePermission(string(p)); err != nil {
			return "", "", err
		}
	}
	if u.GatewayIDs == nil {
		u.GatewayIDs = []string{}
	}
	if len(u.GatewayIDs) > 0 {
		known := map[string]bool{}
		rs, err := tx.q.query(ctx, `SELECT id FROM gateways WHERE org_id = $1`, u.OrgID)
		if err != nil {
			return "", "", err
		}
		ids, err := scanStrings(rs)
		if err != nil {
			return "", "", err
		}
		for _, id := range ids {
			known[id] = true
		}
		seen := map[string]bool{}
		kept := u.GatewayIDs[:0:0]
		for _, id := range u.GatewayIDs {
			if !known[id] {
				return "", "", sb.FieldError("gateway_ids", "gateway %q is not a gateway of this org", id)
			}
			if !seen[id] {
				seen[id] = true
				kept = append(kept, id)
			}
		}
		u.GatewayIDs = kept
	}
	p, _ := json.Marshal(u.Permissions)
	g, _ := json.Marshal(u.GatewayIDs)
	return string(p), string(g), nil
}

// CreateUser stores a user; passwordHash may be empty (API-only users).
func (tx *Tx) CreateUser(ctx context.Context, u *sb.User, passwordHash string) error {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Email == "" || !strings.Contains(u.Email, "@") {
		return sb.FieldError("email", "a valid email address is required")
	}
	if strings.TrimSpace(u.Name) == "" {
		return sb.FieldError("name", "user name is required")
	}
	if len(u.Permissions) == 0 {
		u.Permissions = []sb.Permission{sb.PermLimitedAccess}
	}
	perms, gws, err := tx.checkUser(ctx, u)
	if err != nil {
		return err
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	u.CreatedAt = tx.db.now().UTC()
	_, err = tx.q.exec(ctx, `INSERT INTO users (id, org_id, email, name, permissions, crm_user_id, password_hash, operator, created_at, gateway_ids)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		u.ID, u.OrgID, u.Email, u.Name, perms, nullStr(u.CRMUserID), nullStr(passwordHash), u.Operator, micros(u.CreatedAt), gws)
	if errors.Is(err, errUnique) {
		return sb.Errorf(sb.EConflict, "a user with email %s already exists in this org", u.Email)
	}
	return err
}

// UpdateUser changes a user's name, permissions, CRM user id and gateways.
func (tx *Tx) UpdateUser(ctx context.Context, u *sb.User) error {
	perms, gws, err := tx.checkUser(ctx, u)
	if err != nil {
		return err
	}
	n, err := tx.q.exec(ctx, `UPDATE users SET name = $3, permissions = $4, crm_user_id = $5, gateway_ids = $6 WHERE id = $1 AND org_id = $2`,
		u.ID, u.OrgID, u.Name, perms, nullStr(u.CRMUserID), gws)
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "user %s not found", u.ID)
	}
	return nil
}

// SetPassword stores a user's password hash.
func (tx *Tx) SetPassword(ctx context.Context, userID, hash string) error {
	_, err := tx.q.exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, hash)
	return err
}

// User returns a user of an org.
func (db *DB) User(ctx context.Context, orgID, id string) (*sb.User, error) {
	u, err := scanUser(db.reader().queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 AND org_id = $2`, id, orgID))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "user %s not found", id)
	}
	return u, err
}

// UserByEmail returns a user and password hash by email, in any org (sign-in).
func (db *DB) UserByEmail(ctx context.Context, email string) (*sb.User, string, error) {
	var hash *string
	u, err := scanUser(db.reader().queryRow(ctx, `SELECT `+userCols+`, password_hash FROM users WHERE email = $1 ORDER BY created_at LIMIT 1`,
		strings.ToLower(strings.TrimSpace(email))), &hash)
	if errors.Is(err, errNoRows) {
		return nil, "", sb.Errorf(sb.ENotFound, "no user with that email")
	}
	if err != nil {
		return nil, "", err
	}
	if hash == nil {
		return u, "", nil
	}
	return u, *hash, nil
}

// Users lists an org's users.
func (db *DB) Users(ctx context.Context, orgID string) ([]*sb.User, error) {
	rs, err := db.reader().query(ctx, `SELECT `+userCols+` FROM users WHERE org_id = $1 ORDER BY created_at`, orgID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*sb.User
	for rs.Next() {
		u, err := scanUser(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rs.Err()
}

// --- API keys ---

// APIKey describes a key without its secret.
type APIKey struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	UserID    string `json:"user_id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"-"`
	Revoked   bool   `json:"revoked"`
}

const apiKeyPrefix = "sb_"

// CreateAPIKey makes a key for a user and returns the full key text, which
// is shown once: only a hash of its secret is stored.
func (tx *Tx) CreateAPIKey(ctx context.Context, orgID, userID, name string) (id, key string, err error) {
	idb := make([]byte, 8)
	sec := make([]byte, 24)
	_, _ = rand.Read(idb)
	_, _ = rand.Read(sec)
	id = hex.EncodeToString(idb)
	secret := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sec))
	sum := sha256.Sum256([]byte(secret))
	if name == "" {
		name = "API key"
	}
	_, err = tx.q.exec(ctx, `INSERT INTO api_keys (id, org_id, user_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, orgID, userID, name, sum[:], micros(tx.db.now()))
	if err != nil {
		return "", "", err
	}
	return id, apiKeyPrefix + id + "_" + secret, nil
}

// RevokeAPIKey revokes a key of the org.
func (tx *Tx) RevokeAPIKey(ctx context.Context, orgID, id string) error {
	n, err := tx.q.exec(ctx, `UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL`, id, orgID, micros(tx.db.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "API key %s not found", id)
	}
	return nil
}

// APIKeys lists an org's keys.
func (db *DB) APIKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	rs, err := db.reader().query(ctx, `SELECT id, org_id, user_id, name, created_at, revoked_at IS NOT NULL FROM api_keys WHERE org_id = $1 ORDER BY created_at`, orgID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []APIKey
	for rs.Next() {
		var k APIKey
		if err := rs.Scan(&k.ID, &k.OrgID, &k.UserID, &k.Name, &k.CreatedAt, &k.Revoked); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rs.Err()
}

// Authenticate returns the user a full API key belongs to, or an
// unauthorized error that does not say which part was wrong.
func (db *DB) Authenticate(ctx context.Context, key string) (*sb.User, error) {
	bad := sb.Errorf(sb.EUnauthorized, "invalid API key")
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok {
		return nil, bad
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" {
		return nil, bad
	}
	var orgID, userID string
	var hash []byte
	var revoked bool
	err := db.reader().queryRow(ctx, `SELECT org_id, user_id, secret_hash, revoked_at IS NOT NULL FROM api_keys WHERE id = $1`, id).Scan(&orgID, &userID, &hash, &revoked)
	if errors.Is(err, errNoRows) {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || revoked {
		return nil, bad
	}
	return db.User(ctx, orgID, userID)
}
