package switchboard

import (
	"slices"
	"time"
)

// Permission is a permission set assigned to a user, named as in the CRM
// package the product follows.
type Permission string

const (
	PermSystemAdmin    Permission = "System Admin"
	PermLimitedAccess  Permission = "Limited Access"
	PermBulkSMS        Permission = "Feature: Bulk SMS"
	PermInbox          Permission = "Feature: Inbox"
	PermManualOptInOut Permission = "Feature: Manual Opt-In/Opt-Out"
)

// Permissions lists every known permission set.
var Permissions = []Permission{PermSystemAdmin, PermLimitedAccess, PermBulkSMS, PermInbox, PermManualOptInOut}

// ParsePermission returns the permission named s.
func ParsePermission(s string) (Permission, error) {
	for _, p := range Permissions {
		if string(p) == s {
			return p, nil
		}
	}
	return "", FieldError("permissions", "unknown permission set %q (known: System Admin, Limited Access, Feature: Bulk SMS, Feature: Inbox, Feature: Manual Opt-In/Opt-Out)", s)
}

// User is a person (or the integration identity) in an org.
type User struct {
	ID          string       `json:"id"`
	OrgID       string       `json:"org_id"`
	Email       string       `json:"email"`
	Name        string       `json:"name"`
	Permissions []Permission `json:"permissions"`
	// CRMUserID is the user's id in the CRM, used for owner and created-by
	// fields; empty means the same as ID (built-in CRM).
	CRMUserID string    `json:"crm_user_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Operator marks a service operator: may change settings an org admin
	// cannot undo (the one-way toggles).
	Operator bool `json:"operator,omitempty"`
	// GatewayIDs limits the gateways the user sees and sends through (the
	// subscriptions panel, sends, the inbox, the conversation view's
	// gateway picklist); empty means every gateway. A System Admin always
	// has every gateway.
	GatewayIDs []string `json:"gateway_ids"`
}

// CanUseGateway reports whether the user may see and send through the
// gateway.
func (u *User) CanUseGateway(gatewayID string) bool {
	return u.IsAdmin() || len(u.GatewayIDs) == 0 || slices.Contains(u.GatewayIDs, gatewayID)
}

// RequireGateway returns a forbidden error naming the gateway when the user
// may not use it.
func (u *User) RequireGateway(gw *Gateway) error {
	if u.CanUseGateway(gw.ID) {
		return nil
	}
	return Errorf(EForbidden, "you do not have access to gateway %q (%s, %s); a System Admin can add it to your gateways", gw.Name, gw.Number, gw.ID)
}

// VisibleGateways returns the ids of the gateways the user may use, or nil
// when the user may use every gateway.
func (u *User) VisibleGateways() []string {
	if u.IsAdmin() || len(u.GatewayIDs) == 0 {
		return nil
	}
	return u.GatewayIDs
}

// Has reports whether the user holds p directly.
func (u *User) Has(p Permission) bool { return slices.Contains(u.Permissions, p) }

// IsAdmin reports whether the user is a System Admin.
func (u *User) IsAdmin() bool { return u.Has(PermSystemAdmin) }

// Can reports whether the user may use a feature guarded by p: System Admin
// grants every feature; Limited Access alone grants none of the Feature sets.
func (u *User) Can(p Permission) bool { return u.IsAdmin() || u.Has(p) }

// CRMID returns the id to write into CRM owner / created-by fields.
func (u *User) CRMID() string {
	if u.CRMUserID != "" {
		return u.CRMUserID
	}
	return u.ID
}

// Require returns a forbidden error naming the permission when the user
// lacks it.
func (u *User) Require(p Permission) error {
	if u.Can(p) {
		return nil
	}
	if p == PermSystemAdmin {
		return Errorf(EForbidden, "this needs the %q permission set", PermSystemAdmin)
	}
	return Errorf(EForbidden, "this needs the %q or %q permission set", PermSystemAdmin, p)
}
