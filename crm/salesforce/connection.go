package salesforce

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard"
)

// Authorization flows of a Connection.
const (
	FlowWebServer = "web_server"
	FlowJWT       = "jwt"
)

// Connection is an org's authorization to Salesforce and its mapping. It
// holds secrets (tokens, the JWT private key): stores encrypt it at rest,
// and its LogValue redacts them.
type Connection struct {
	Flow        string `json:"flow"`
	InstanceURL string `json:"instance_url"`
	AccessToken string `json:"access_token"`
	// RefreshToken is empty for the JWT flow.
	RefreshToken string    `json:"refresh_token,omitempty"`
	IssuedAt     time.Time `json:"issued_at,omitzero"`
	// ExpiresAt is zero when the token response had no expires_in (the
	// usual case: Salesforce sessions end by inactivity).
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	IdentityURL string    `json:"identity_url"`
	// UserID is the authorized Salesforce user (005…); SFOrgID the
	// Salesforce org (00D…).
	UserID       string    `json:"user_id"`
	SFOrgID      string    `json:"sf_org_id"`
	Username     string    `json:"username"`
	AuthorizedAt time.Time `json:"authorized_at"`
	// ClientID and PrivateKeyPEM are the JWT flow's settings.
	ClientID      string `json:"client_id,omitempty"`
	PrivateKeyPEM string `json:"private_key_pem,omitempty"`
	// LoginURL is where tokens are refreshed (web server flow) or where JWT
	// assertions are posted (the instance URL).
	LoginURL string `json:"login_url,omitempty"`
	// Offline is set when Salesforce refused the authorization (revoked,
	// expired refresh token, bad client); nothing is sent until an admin
	// authorizes again.
	Offline       bool    `json:"offline"`
	OfflineReason string  `json:"offline_reason,omitempty"`
	Mapping       Mapping `json:"mapping"`
}

// LogValue shows a connection in logs without its secrets.
func (c *Connection) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("flow", c.Flow),
		slog.String("instance_url", c.InstanceURL),
		slog.String("user_id", c.UserID),
		slog.String("sf_org_id", c.SFOrgID),
		slog.Bool("offline", c.Offline),
	)
}

// Clone returns a deep copy.
func (c *Connection) Clone() *Connection {
	if c == nil {
		return nil
	}
	cp := *c
	cp.Mapping = c.Mapping.Clone()
	return &cp
}

// Store keeps connections and health reports. The service implements it in
// SQL with secrets encrypted; MemStore is an in-memory one for tests.
type Store interface {
	// LoadConnection returns the org's connection, or an error with code
	// switchboard.ENotFound when the org has none.
	LoadConnection(ctx context.Context, orgID string) (*Connection, error)
	// SaveConnection stores a connection, replacing any previous one.
	SaveConnection(ctx context.Context, orgID string, c *Connection) error
	// UpdateTokens is a compare-and-swap for token refreshes: it stores c's
	// tokens (access and refresh token, instance URL, issued and expiry
	// times) only if the stored connection is online and its refresh token
	// is still oldRefreshToken, and returns the stored connection afterwards
	// — c's values when the swap happened, the newer stored ones otherwise.
	UpdateTokens(ctx context.Context, orgID, oldRefreshToken string, c *Connection) (*Connection, error)
	// SetOffline marks the connection offline with a reason an admin can
	// read (no secrets).
	SetOffline(ctx context.Context, orgID, reason string) error
	// SaveHealth stores the latest health report.
	SaveHealth(ctx context.Context, orgID string, r *HealthReport) error
}

// MemStore is a Store in memory, safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	conns  map[string]*Connection
	health map[string]*HealthReport
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{conns: map[string]*Connection{}, health: map[string]*HealthReport{}}
}

// LoadConnection implements Store.
func (m *MemStore) LoadConnection(_ context.Context, orgID string) (*Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.conns[orgID]
	if !ok {
		return nil, switchboard.Errorf(switchboard.ENotFound, "org has no Salesforce connection")
	}
	return c.Clone(), nil
}

// SaveConnection implements Store.
func (m *MemStore) SaveConnection(_ context.Context, orgID string, c *Connection) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[orgID] = c.Clone()
	return nil
}

// UpdateTokens implements Store.
func (m *MemStore) UpdateTokens(_ context.Context, orgID, oldRefreshToken string, c *Connection) (*Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.conns[orgID]
	if !ok {
		return nil, switchboard.Errorf(switchboard.ENotFound, "org has no Salesforce connection")
	}
	if !cur.Offline && cur.RefreshToken == oldRefreshToken {
		cur.AccessToken = c.AccessToken
		cur.RefreshToken = c.RefreshToken
		cur.InstanceURL = c.InstanceURL
		cur.IssuedAt = c.IssuedAt
		cur.ExpiresAt = c.ExpiresAt
		if c.IdentityURL != "" {
			cur.IdentityURL = c.IdentityURL
		}
	}
	return cur.Clone(), nil
}

// SetOffline implements Store.
func (m *MemStore) SetOffline(_ context.Context, orgID, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.conns[orgID]
	if !ok {
		return switchboard.Errorf(switchboard.ENotFound, "org has no Salesforce connection")
	}
	cur.Offline = true
	cur.OfflineReason = reason
	return nil
}

// SaveHealth implements Store.
func (m *MemStore) SaveHealth(_ context.Context, orgID string, r *HealthReport) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *r
	cp.Items = append([]HealthItem(nil), r.Items...)
	m.health[orgID] = &cp
	return nil
}

// Health returns the last saved health report of the org, or nil.
func (m *MemStore) Health(orgID string) *HealthReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.health[orgID]
}
