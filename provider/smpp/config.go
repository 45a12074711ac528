package smpp

import (
	"net"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
)

// Gateway config keys.
const (
	keyHost       = "host"
	keyPort       = "port"
	keySystemID   = "system_id"
	keyPassword   = "password"
	keySystemType = "system_type"
	keySourceTON  = "source_ton"
	keySourceNPI  = "source_npi"
	keyDestTON    = "dest_ton"
	keyDestNPI    = "dest_npi"
)

// Type of number and numbering plan values (section 5.2.5 and 5.2.6).
const (
	tonInternational byte = 1
	tonAlphanumeric  byte = 5
	npiUnknown       byte = 0
	npiISDN          byte = 1
)

var validNPI = map[byte]bool{0: true, 1: true, 3: true, 4: true, 6: true, 8: true, 9: true, 10: true, 14: true, 18: true}

// config is a gateway's SMPP settings, parsed and checked. It is comparable,
// so a changed config is noticed by ==.
type config struct {
	Host       string
	Port       int
	SystemID   string
	Password   string
	SystemType string
	// Source is the source_addr sent with every submit_sm.
	Source    string
	SourceTON byte
	SourceNPI byte
	DestTON   byte
	DestNPI   byte
}

// addr returns host:port.
func (c config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// configFields lists the settings of an SMPP gateway.
func configFields() []sb.ConfigField {
	return []sb.ConfigField{
		{Key: keyHost, Label: "SMSC host", Required: true, Help: "Host name or IP address of the SMSC."},
		{Key: keyPort, Label: "SMSC port", Required: true, Help: "TCP port of the SMSC, usually 2775."},
		{Key: keySystemID, Label: "System ID", Required: true, Help: "The account name the SMSC gave you (at most 15 characters)."},
		{Key: keyPassword, Label: "Password", Required: true, Secret: true, Help: "At most 8 characters (SMPP 3.4)."},
		{Key: keySystemType, Label: "System type", Help: "Only if the SMSC asks for one (at most 12 characters)."},
		{Key: keySourceTON, Label: "Source TON", Help: "Type of number of the sender: default 1 (international) for a phone number, 5 (alphanumeric) for a sender id."},
		{Key: keySourceNPI, Label: "Source NPI", Help: "Numbering plan of the sender: default 1 (E.164) for a phone number, 0 for a sender id."},
		{Key: keyDestTON, Label: "Destination TON", Help: "Type of number of recipients, default 1 (international)."},
		{Key: keyDestNPI, Label: "Destination NPI", Help: "Numbering plan of recipients, default 1 (E.164)."},
	}
}

// parseConfig reads and checks gw's SMPP settings; the error names the field.
func parseConfig(gw *sb.Gateway) (config, error) {
	get := func(k string) string { return strings.TrimSpace(gw.Config[k]) }
	c := config{
		Host:       get(keyHost),
		SystemID:   get(keySystemID),
		Password:   gw.Config[keyPassword], // passwords are taken as typed
		SystemType: get(keySystemType),
	}
	if c.Host == "" {
		return c, sb.FieldError(keyHost, "host is required")
	}
	if strings.ContainsAny(c.Host, " /:") && net.ParseIP(c.Host) == nil {
		return c, sb.FieldError(keyHost, "host must be a host name or IP address without port or scheme")
	}
	port := get(keyPort)
	if port == "" {
		return c, sb.FieldError(keyPort, "port is required")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return c, sb.FieldError(keyPort, "port must be a number from 1 to 65535")
	}
	c.Port = p
	if err := checkCString(keySystemID, "system_id", c.SystemID, maxSystemID, true); err != nil {
		return c, err
	}
	if err := checkCString(keyPassword, "password", c.Password, maxPassword, true); err != nil {
		return c, err
	}
	if err := checkCString(keySystemType, "system_type", c.SystemType, maxSystemType, false); err != nil {
		return c, err
	}

	c.Source = strings.TrimPrefix(strings.TrimSpace(gw.Number), "+")
	if err := checkCString("number", "sender", c.Source, maxAddr, true); err != nil {
		return c, err
	}
	if isDigits(c.Source) {
		c.SourceTON, c.SourceNPI = tonInternational, npiISDN
	} else {
		c.SourceTON, c.SourceNPI = tonAlphanumeric, npiUnknown
	}
	c.DestTON, c.DestNPI = tonInternational, npiISDN
	for _, f := range []struct {
		key string
		dst *byte
		npi bool
	}{
		{keySourceTON, &c.SourceTON, false},
		{keySourceNPI, &c.SourceNPI, true},
		{keyDestTON, &c.DestTON, false},
		{keyDestNPI, &c.DestNPI, true},
	} {
		v := get(f.key)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		switch {
		case f.npi && (err != nil || n < 0 || n > 255 || !validNPI[byte(n)]):
			return c, sb.FieldError(f.key, "%s must be one of the SMPP numbering plans 0, 1, 3, 4, 6, 8, 9, 10, 14 or 18", f.key)
		case !f.npi && (err != nil || n < 0 || n > 6):
			return c, sb.FieldError(f.key, "%s must be an SMPP type of number from 0 to 6", f.key)
		}
		*f.dst = byte(n)
	}
	return c, nil
}

// checkCString checks a value that travels as a C-Octet string of at most
// max octets (NUL included): printable ASCII, within the length.
func checkCString(key, name, v string, max int, required bool) error {
	if v == "" {
		if required {
			return sb.FieldError(key, "%s is required", name)
		}
		return nil
	}
	if len(v) > max-1 {
		return sb.FieldError(key, "%s must be at most %d characters (SMPP 3.4), not %d", name, max-1, len(v))
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7E {
			return sb.FieldError(key, "%s must contain printable ASCII characters only", name)
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
