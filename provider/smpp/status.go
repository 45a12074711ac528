package smpp

import (
	"errors"
	"fmt"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Command status values (section 5.1.3) that Switchboard sends or acts on.
const (
	statusOK           uint32 = 0x00000000
	statusInvCmdID     uint32 = 0x00000003
	statusInvBndSts    uint32 = 0x00000004
	statusSysErr       uint32 = 0x00000008
	statusInvDstAdr    uint32 = 0x0000000B
	statusBindFail     uint32 = 0x0000000D
	statusInvPaswd     uint32 = 0x0000000E
	statusInvSysID     uint32 = 0x0000000F
	statusMsgQFul      uint32 = 0x00000014
	statusThrottled    uint32 = 0x00000058
	statusTempAppError uint32 = 0x00000064
)

// statusText names the command status values of SMPP 3.4.
var statusText = map[uint32]string{
	0x00: "no error",
	0x01: "message length is invalid",
	0x02: "command length is invalid",
	0x03: "invalid command id",
	0x04: "incorrect bind status for the command",
	0x05: "already bound",
	0x06: "invalid priority flag",
	0x07: "invalid registered delivery flag",
	0x08: "system error",
	0x0A: "invalid source address",
	0x0B: "invalid destination address",
	0x0C: "message id is invalid",
	0x0D: "bind failed",
	0x0E: "invalid password",
	0x0F: "invalid system id",
	0x11: "cancel_sm failed",
	0x13: "replace_sm failed",
	0x14: "message queue full",
	0x15: "invalid service type",
	0x33: "invalid number of destinations",
	0x34: "invalid distribution list name",
	0x40: "destination flag is invalid",
	0x42: "invalid submit with replace request",
	0x43: "invalid esm_class field data",
	0x44: "cannot submit to distribution list",
	0x45: "submit_sm or submit_multi failed",
	0x48: "invalid source address TON",
	0x49: "invalid source address NPI",
	0x50: "invalid destination address TON",
	0x51: "invalid destination address NPI",
	0x53: "invalid system_type field",
	0x54: "invalid replace_if_present flag",
	0x55: "invalid number of messages",
	0x58: "throttling error (the SMSC asks to slow down)",
	0x61: "invalid scheduled delivery time",
	0x62: "invalid message validity period",
	0x63: "predefined message invalid or not found",
	0x64: "ESME receiver temporary application error",
	0x65: "ESME receiver permanent application error",
	0x66: "ESME receiver reject message error",
	0x67: "query_sm request failed",
	0xC0: "error in the optional part of the PDU body",
	0xC1: "optional parameter not allowed",
	0xC2: "invalid parameter length",
	0xC3: "expected optional parameter missing",
	0xC4: "invalid optional parameter value",
	0xFE: "delivery failure",
	0xFF: "unknown error",
}

// statusCode formats a command status as the SendError code "0x0000000B".
func statusCode(status uint32) string { return fmt.Sprintf("0x%08X", status) }

// statusDebug is the Debug text for a command status:
// "SMPP 0x0000000B: invalid destination address".
func statusDebug(status uint32) string {
	text, ok := statusText[status]
	if !ok {
		text = "SMSC-specific error"
	}
	return fmt.Sprintf("SMPP %s: %s", statusCode(status), text)
}

// throttleRetryAfter is how long a throttled send should wait; SMPP gives no
// hint, so this is a conservative pause for the send queue.
const throttleRetryAfter = time.Second

// submitError maps a submit_sm_resp command status to a send error.
func submitError(status uint32) *sb.SendError {
	e := &sb.SendError{Code: statusCode(status), Debug: statusDebug(status)}
	switch status {
	case statusThrottled, statusMsgQFul:
		e.Kind, e.RetryAfter = sb.SendThrottled, throttleRetryAfter
	case statusInvDstAdr:
		e.Kind = sb.SendInvalidNumber
	case statusSysErr, statusInvBndSts:
		// A system error is the SMSC's trouble, and an "incorrect bind
		// status" answer means our bind was lost: neither is the message's
		// fault, so both are retried.
		e.Kind = sb.SendTransient
	default:
		e.Kind = sb.SendPermanent
	}
	return e
}

// bindError is a bind_transceiver refused by the SMSC.
type bindError struct{ Status uint32 }

func (e *bindError) Error() string { return "bind refused: " + statusDebug(e.Status) }

// sendError turns any error met while sending into a *SendError: bind
// refusals for bad credentials are SendAuth, other bind refusals, broken
// connections and timeouts are SendTransient.
func sendError(err error) *sb.SendError {
	var se *sb.SendError
	if errors.As(err, &se) {
		return se
	}
	var be *bindError
	if errors.As(err, &be) {
		e := &sb.SendError{Code: statusCode(be.Status), Debug: "SMPP bind refused: " + statusDebug(be.Status), Err: err}
		switch be.Status {
		case statusInvPaswd, statusInvSysID, statusBindFail:
			e.Kind = sb.SendAuth
		default:
			e.Kind = sb.SendTransient
		}
		return e
	}
	var ce *sb.Error
	if errors.As(err, &ce) && ce.Code == sb.EInvalid {
		// The gateway's settings are wrong: held like bad credentials, so
		// nothing is lost once an admin fixes them.
		return &sb.SendError{Kind: sb.SendAuth, Debug: "SMPP gateway settings: " + ce.Message, Err: err}
	}
	return &sb.SendError{Kind: sb.SendTransient, Debug: "SMPP connection: " + err.Error(), Err: err}
}
