package hub

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// SalesforceStore keeps Salesforce connections in the store, sealed, with a
// compare-and-swap on the refresh token so concurrent refreshes in several
// processes never lose a rotated token.
type SalesforceStore struct{ DB *store.DB }

var _ salesforce.Store = SalesforceStore{}

func decodeConn(data []byte) (*salesforce.Connection, error) {
	var c salesforce.Connection
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConnection implements salesforce.Store.
func (s SalesforceStore) LoadConnection(ctx context.Context, orgID string) (*salesforce.Connection, error) {
	row, err := s.DB.CRMConnection(ctx, orgID)
	if err != nil {
		return nil, err
	}
	c, err := decodeConn(row.Data)
	if err != nil {
		return nil, err
	}
	c.Offline, c.OfflineReason = row.Offline, row.OfflineReason
	return c, nil
}

// SaveConnection implements salesforce.Store.
func (s SalesforceStore) SaveConnection(ctx context.Context, orgID string, c *salesforce.Connection) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.DB.SaveCRMConnection(ctx, orgID, data, c.RefreshToken, c.Offline, c.OfflineReason)
}

// UpdateTokens implements salesforce.Store.
func (s SalesforceStore) UpdateTokens(ctx context.Context, orgID, oldRefreshToken string, c *salesforce.Connection) (*salesforce.Connection, error) {
	data, err := s.DB.SwapCRMTokens(ctx, orgID, oldRefreshToken, func(cur []byte) ([]byte, string, error) {
		stored, err := decodeConn(cur)
		if err != nil {
			return nil, "", err
		}
		stored.AccessToken, stored.RefreshToken, stored.InstanceURL = c.AccessToken, c.RefreshToken, c.InstanceURL
		stored.IssuedAt, stored.ExpiresAt = c.IssuedAt, c.ExpiresAt
		if c.IdentityURL != "" {
			stored.IdentityURL = c.IdentityURL
		}
		b, err := json.Marshal(stored)
		return b, stored.RefreshToken, err
	})
	if err != nil {
		return nil, err
	}
	return s.LoadConnectionFrom(ctx, orgID, data)
}

// LoadConnectionFrom decodes a stored document with the row's offline state.
func (s SalesforceStore) LoadConnectionFrom(ctx context.Context, orgID string, data []byte) (*salesforce.Connection, error) {
	c, err := decodeConn(data)
	if err != nil {
		return nil, err
	}
	row, err := s.DB.CRMConnection(ctx, orgID)
	if err == nil {
		c.Offline, c.OfflineReason = row.Offline, row.OfflineReason
	}
	return c, nil
}

// SetOffline implements salesforce.Store.
func (s SalesforceStore) SetOffline(ctx context.Context, orgID, reason string) error {
	return s.DB.SetCRMOffline(ctx, orgID, reason, func(data []byte) []byte {
		c, err := decodeConn(data)
		if err != nil {
			return data
		}
		c.Offline, c.OfflineReason = true, reason
		b, _ := json.Marshal(c)
		return b
	})
}

// SaveHealth implements salesforce.Store.
func (s SalesforceStore) SaveHealth(ctx context.Context, orgID string, r *salesforce.HealthReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.DB.SaveHealthCheck(ctx, orgID, r.OK, b)
}
