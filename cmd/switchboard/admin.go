package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
)

// bootstrap creates the first org, its admin (API key printed once) and, by
// default, a simulated gateway, when the database has no org yet.
func bootstrap(ctx context.Context, app *App, stdout io.Writer) error {
	org, admin, key, created, err := app.Hub.Bootstrap(ctx, app.Cfg.OrgName, app.Cfg.AdminEmail, "Admin")
	if err != nil || !created {
		return err
	}
	// A password for the web UI, shown once like the key.
	password := randomPassword()
	hash, err := sbhttp.HashPassword(password)
	if err != nil {
		return err
	}
	if err := app.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SetPassword(ctx, admin.ID, hash) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nCreated org %q (%s) with admin %s.\n", org.Name, org.ID, admin.Email)
	fmt.Fprintf(stdout, "Admin API key (shown once, store it now):\n\n    %s\n\n", key)
	fmt.Fprintf(stdout, "Sign in to the web UI at %s/ui/ as %s with the password (shown once):\n\n    %s\n\n", app.Cfg.public.String(), admin.Email, password)
	if app.Cfg.DemoGateway {
		rate := 0.0
		v, err := app.Hub.CreateGateway(ctx, admin, hub.GatewayRequest{Name: "Demo (simulated carrier)", Provider: sb.ProviderSim, Number: "+12025550100", Rate: &rate})
		if err != nil {
			return fmt.Errorf("create demo gateway: %w", err)
		}
		fmt.Fprintf(stdout, "Created simulated gateway %s (%s).\n\n", v.ID, v.Number)
	}
	return nil
}

// adminEnv opens the store with an insert-only queue for admin commands.
func adminEnv(ctx context.Context, fs *flag.FlagSet, args []string, stderr io.Writer) (*App, error) {
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return nil, err
	}
	level, _ := cfg.logLevel()
	if level < 0 {
		level = 0
	}
	log := logging.New(stderr, max(level, 4), cfg.LogFormat) // warnings and errors only
	return newApp(ctx, cfg, log, false)
}

// orgAdmin returns the org named by id (or the only org) and its first
// System Admin.
func orgAdmin(ctx context.Context, db *store.DB, orgID string) (*sb.Org, *sb.User, error) {
	if orgID == "" {
		orgs, err := db.Orgs(ctx)
		if err != nil {
			return nil, nil, err
		}
		if len(orgs) != 1 {
			return nil, nil, fmt.Errorf("there are %d orgs: name one with --org", len(orgs))
		}
		orgID = orgs[0].ID
	}
	org, err := db.Org(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	users, err := db.Users(ctx, org.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range users {
		if u.IsAdmin() {
			return org, u, nil
		}
	}
	return nil, nil, fmt.Errorf("org %s has no System Admin user", org.ID)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

const adminUsage = `Usage: switchboard admin <command> [flags]

  org create --name N --admin-email E [--admin-name N]
  org list
  org settings [--org ID] [--enable NAME …] [--disable NAME …]
                              show the org's settings, or switch the one-way toggles
                              messaging_api_for_bulk and connected_app_for_incoming as
                              the service operator (who alone may switch them off)
  user create [--org ID] --email E --name N [--perm "Feature: Inbox" …] [--gateway ID …] [--password P] [--crm-user-id ID]
  user list [--org ID]
  key create [--org ID] [--user ID] [--name N]
  key revoke [--org ID] --id KEY_ID
  gateway create [--org ID] --provider sim|twilio|whatsapp|smpp --number +1… [--name N] [--rate R] [--number-type T] [--sandbox] [--config key=value …]
  gateway list [--org ID]
  send [--org ID] --gateway ID --to +1… --body TEXT [--record ID]
  reseal                      re-encrypt every secret with the first key of SWITCHBOARD_SECRET_KEYS (key rotation)

Each command also takes the database flags of "serve" (--data, --database-url).
`

func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprint(stderr, adminUsage)
		return errors.New("an admin command is required")
	}
	cmd := args[0]
	if len(args) > 1 && (cmd == "org" || cmd == "user" || cmd == "key" || cmd == "gateway") {
		cmd += " " + args[1]
		args = args[2:]
	} else {
		args = args[1:]
	}
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	orgID := fs.String("org", "", "org id (default: the only org)")
	var (
		name, email, adminName, user, id, provider, number, numberType, body, to, gateway, record, password, crmUser *string
		rate                                                                                                         *float64
		sandbox                                                                                                      *bool
		perms, config, gateways, enable, disable                                                                     multiFlag
	)
	switch cmd {
	case "org create":
		name = fs.String("name", "", "org name")
		email = fs.String("admin-email", "", "admin email")
		adminName = fs.String("admin-name", "Admin", "admin name")
	case "org settings":
		fs.Var(&enable, "enable", "one-way setting to switch on (repeat): "+hub.ToggleMessagingAPIForBulk+" or "+hub.ToggleConnectedAppForIncoming)
		fs.Var(&disable, "disable", "one-way setting to switch off (repeat): "+hub.ToggleMessagingAPIForBulk+" or "+hub.ToggleConnectedAppForIncoming)
	case "user create":
		email = fs.String("email", "", "email")
		name = fs.String("name", "", "name")
		password = fs.String("password", "", "password for the web UI (optional)")
		crmUser = fs.String("crm-user-id", "", "the user's id in the CRM")
		fs.Var(&perms, "perm", "permission set (repeat): System Admin, Limited Access, Feature: Bulk SMS, Feature: Inbox, Feature: Manual Opt-In/Opt-Out")
		fs.Var(&gateways, "gateway", "gateway id the user may use (repeat; none: every gateway)")
	case "key create":
		user = fs.String("user", "", "user id (default: the org's admin)")
		name = fs.String("name", "", "key name")
	case "key revoke":
		id = fs.String("id", "", "key id")
	case "gateway create":
		provider = fs.String("provider", "", "sim, twilio, whatsapp or smpp")
		number = fs.String("number", "", "sending number (E.164)")
		name = fs.String("name", "", "display name")
		numberType = fs.String("number-type", "", "long_code, toll_free, short_code or whatsapp")
		rate = fs.Float64("rate", -1, "messages per second (default: per number type; 0 = unlimited)")
		sandbox = fs.Bool("sandbox", false, "sandbox gateway: webhooks are set by hand")
		fs.Var(&config, "config", "provider setting key=value (repeat)")
	case "send":
		gateway = fs.String("gateway", "", "gateway id")
		to = fs.String("to", "", "recipient number")
		body = fs.String("body", "", "message text")
		record = fs.String("record", "", "CRM record id")
	case "org list", "user list", "gateway list", "reseal":
	default:
		fmt.Fprint(stderr, adminUsage)
		return fmt.Errorf("unknown admin command %q", cmd)
	}
	app, err := adminEnv(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer app.Stop(time.Second)
	db, h := app.DB, app.Hub

	if cmd == "org create" {
		org, u, key, err := h.CreateOrg(ctx, *name, *email, *adminName)
		if err != nil {
			return err
		}
		printJSON(stdout, map[string]string{"org_id": org.ID, "admin_user_id": u.ID, "api_key": key})
		return nil
	}
	if cmd == "reseal" {
		n, err := db.Reseal(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-sealed %d values with the current key\n", n)
		return nil
	}
	if cmd == "org list" {
		orgs, err := db.Orgs(ctx)
		if err != nil {
			return err
		}
		printJSON(stdout, orgs)
		return nil
	}
	org, adm, err := orgAdmin(ctx, db, *orgID)
	if err != nil {
		return err
	}
	switch cmd {
	case "org settings":
		res := &hub.SettingsResult{Org: org}
		for _, t := range []struct {
			names multiFlag
			on    bool
		}{{enable, true}, {disable, false}} {
			for _, name := range t.names {
				if res, err = h.OperatorSetToggle(ctx, org.ID, name, t.on); err != nil {
					return err
				}
			}
		}
		printJSON(stdout, res)
	case "user create":
		u := &sb.User{OrgID: org.ID, Email: *email, Name: *name, CRMUserID: *crmUser, GatewayIDs: gateways}
		for _, p := range perms {
			perm, err := sb.ParsePermission(p)
			if err != nil {
				return err
			}
			u.Permissions = append(u.Permissions, perm)
		}
		hash := ""
		if *password != "" {
			if hash, err = sbhttp.HashPassword(*password); err != nil {
				return err
			}
		}
		if err := db.Tx(ctx, func(tx *store.Tx) error { return tx.CreateUser(ctx, u, hash) }); err != nil {
			return err
		}
		printJSON(stdout, u)
	case "user list":
		us, err := db.Users(ctx, org.ID)
		if err != nil {
			return err
		}
		printJSON(stdout, us)
	case "key create":
		uid := adm.ID
		if *user != "" {
			if _, err := db.User(ctx, org.ID, *user); err != nil {
				return err
			}
			uid = *user
		}
		var kid, key string
		if err := db.Tx(ctx, func(tx *store.Tx) error {
			var err error
			kid, key, err = tx.CreateAPIKey(ctx, org.ID, uid, *name)
			return err
		}); err != nil {
			return err
		}
		printJSON(stdout, map[string]string{"id": kid, "key": key, "user_id": uid})
	case "key revoke":
		if err := db.Tx(ctx, func(tx *store.Tx) error { return tx.RevokeAPIKey(ctx, org.ID, *id) }); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "revoked")
	case "gateway create":
		req := hub.GatewayRequest{Name: *name, Provider: *provider, Number: *number, NumberType: *numberType, Sandbox: sandbox, Config: map[string]string{}}
		if *rate >= 0 {
			req.Rate = rate
		}
		for _, kv := range config {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--config %q: want key=value", kv)
			}
			req.Config[k] = v
		}
		v, err := h.CreateGateway(ctx, adm, req)
		if err != nil {
			return err
		}
		printJSON(stdout, v)
	case "gateway list":
		gws, err := db.Gateways(ctx, org.ID)
		if err != nil {
			return err
		}
		views := make([]*hub.GatewayView, len(gws))
		for i, g := range gws {
			views[i] = h.View(g)
		}
		printJSON(stdout, views)
	case "send":
		m, _, err := h.Send(ctx, adm, hub.SendRequest{GatewayID: *gateway, To: *to, Body: *body, RecordID: *record})
		if err != nil {
			return err
		}
		printJSON(stdout, m)
	}
	return nil
}

// randomPassword returns a 20-character password from an unambiguous
// alphabet.
func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
