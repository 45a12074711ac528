// Package twiliotest holds the webhook requests Twilio's messaging
// documentation describes (incoming SMS and MMS, status callbacks), for the
// tests of the Twilio provider and of the whole service through its HTTP
// server. Sign them with twilio.Signature.
package twiliotest

import "net/url"

// Values the payloads carry.
const (
	// Number is the Twilio number messages are sent to and from.
	Number = "+14155550100"
	// Handset is the other party.
	Handset = "+14155559876"
	// SMSSID is the MessageSid of IncomingSMS.
	SMSSID = "SM5f6e0a3c2b1d4e8f9a7b6c5d4e3f2a1b"
	// SMSBody is the Body of IncomingSMS.
	SMSBody = "Is the 7pm table still free?"
	// MMSSID is the MessageSid of IncomingMMS.
	MMSSID = "MM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
)

// IncomingSMS is an incoming SMS with the parameters Twilio's messaging
// webhook documentation lists.
func IncomingSMS(accountSID string) url.Values {
	return url.Values{
		"ToCountry": {"US"}, "ToState": {"CA"}, "SmsMessageSid": {SMSSID},
		"NumMedia": {"0"}, "ToCity": {"SAN FRANCISCO"}, "FromZip": {"94107"},
		"SmsSid": {SMSSID}, "FromState": {"CA"}, "SmsStatus": {"received"},
		"FromCity": {"SAN FRANCISCO"}, "Body": {SMSBody}, "FromCountry": {"US"},
		"To": {Number}, "ToZip": {"94105"}, "NumSegments": {"1"},
		"MessageSid": {SMSSID}, "AccountSid": {accountSID},
		"From": {Handset}, "ApiVersion": {"2010-04-01"},
	}
}

// IncomingMMS is an incoming MMS without text and with two media items.
func IncomingMMS(accountSID string) url.Values {
	f := IncomingSMS(accountSID)
	for _, k := range []string{"MessageSid", "SmsMessageSid", "SmsSid"} {
		f.Set(k, MMSSID)
	}
	f.Set("Body", "")
	f.Set("NumMedia", "2")
	for i, m := range [][2]string{{"image/jpeg", "ME0000000000000000000000000000000a"}, {"image/png", "ME0000000000000000000000000000000b"}} {
		f.Set("MediaContentType"+string(rune('0'+i)), m[0])
		f.Set("MediaUrl"+string(rune('0'+i)), MediaURL(accountSID, MMSSID, m[1]))
	}
	return f
}

// MediaURL is the URL Twilio gives a media item of a message.
func MediaURL(accountSID, messageSID, mediaSID string) string {
	return "https://api.twilio.com/2010-04-01/Accounts/" + accountSID + "/Messages/" + messageSID + "/Media/" + mediaSID
}

// StatusCallback is the status callback of an outgoing message (from Number
// to Handset) as Twilio documents it; errorCode "" leaves ErrorCode out.
func StatusCallback(accountSID, messageSID, status, errorCode string) url.Values {
	f := url.Values{
		"SmsSid": {messageSID}, "SmsStatus": {status}, "MessageStatus": {status},
		"To": {Handset}, "MessageSid": {messageSID}, "AccountSid": {accountSID},
		"From": {Number}, "ApiVersion": {"2010-04-01"},
	}
	if errorCode != "" {
		f.Set("ErrorCode", errorCode)
	}
	return f
}
