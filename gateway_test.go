package switchboard_test

import (
	"errors"
	"testing"

	sb "github.com/switchboard/switchboard"
)

func TestGatewayNormalize(t *testing.T) {
	cases := []struct {
		gw         sb.Gateway
		number     string
		numberType string
		field      string
	}{
		{sb.Gateway{Provider: "twilio", Number: "(202) 555-0100"}, "+12025550100", sb.NumberLongCode, ""},
		{sb.Gateway{Provider: "twilio", Number: "12345", NumberType: sb.NumberShortCode}, "12345", sb.NumberShortCode, ""},
		{sb.Gateway{Provider: "twilio", Number: "12345"}, "", "", "number"},
		{sb.Gateway{Provider: "whatsapp", Number: "+12025550100"}, "+12025550100", sb.NumberWhatsApp, ""},
		{sb.Gateway{Provider: "smpp", Number: "College"}, "College", sb.NumberLongCode, ""},
		{sb.Gateway{Provider: "", Number: "+12025550100"}, "", "", "provider"},
		{sb.Gateway{Provider: "sim", Number: "+12025550100", NumberType: "fax"}, "", "", "number_type"},
		{sb.Gateway{Provider: "sim", Number: "+12025550100", Rate: -1}, "", "", "rate"},
		{sb.Gateway{Provider: "sim", Number: "+12025550100", RateUnit: "byte"}, "", "", "rate_unit"},
		{sb.Gateway{Provider: "sim", Number: "+12025550100", Keywords: sb.Keywords{OptOut: []string{"GO"}, OptIn: []string{"go"}}}, "", "", "keywords"},
		{sb.Gateway{Provider: "sim", Number: "+12025550100", Keywords: sb.Keywords{OptOut: []string{" ! "}}}, "", "", "keywords"},
	}
	for _, c := range cases {
		g := c.gw
		err := g.Normalize("US")
		if c.field != "" {
			var e *sb.Error
			if err == nil || !errors.As(err, &e) || e.Field != c.field {
				t.Errorf("%+v: error %v, want one naming %s", c.gw, err, c.field)
			}
			continue
		}
		if err != nil || g.Number != c.number || g.NumberType != c.numberType || g.RateUnit != sb.RatePerMessage || len(g.Keywords.OptOut) == 0 {
			t.Errorf("%+v → %+v, %v", c.gw, g, err)
		}
	}
}

func TestDefaultRates(t *testing.T) {
	for typ, want := range map[string]float64{sb.NumberLongCode: 1, sb.NumberTollFree: 3, sb.NumberShortCode: 100, sb.NumberWhatsApp: 80} {
		if got := sb.DefaultRate(typ); got != want {
			t.Errorf("DefaultRate(%s) = %v, want %v", typ, got, want)
		}
	}
}
