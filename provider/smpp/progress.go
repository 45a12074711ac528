package smpp

import (
	"encoding/json"
	"fmt"

	sb "github.com/switchboard/switchboard"
)

// progress is what the SMSC accepted of a multipart message before a
// failed attempt: the concatenation reference its parts share and, per
// part, whether the SMSC accepted it and the message_id it gave. It travels
// as switchboard.SendError.Progress; the hub keeps it and hands it back, and
// the retry submits only the parts not accepted, under the same reference,
// so the handset joins the parts and gets none twice.
type progress struct {
	Ref   byte   `json:"ref"`
	Parts []part `json:"parts"`
}

type part struct {
	OK bool   `json:"ok,omitempty"`
	ID string `json:"id,omitempty"`
}

// parseProgress reads the progress of an earlier attempt of a message of
// n parts; ok is false when there is none or it does not fit the message.
func parseProgress(s string, n int) (progress, bool) {
	var pr progress
	if s == "" || json.Unmarshal([]byte(s), &pr) != nil || len(pr.Parts) != n || n < 2 {
		return progress{}, false
	}
	return pr, true
}

// accepted counts the parts the SMSC accepted.
func (pr progress) accepted() int {
	n := 0
	for _, p := range pr.Parts {
		if p.OK {
			n++
		}
	}
	return n
}

// failed returns the send error of an attempt that stopped with err: when
// some parts of a multipart message went out, it says how many and carries
// the progress for the next attempt.
func (pr progress) failed(err *sb.SendError) *sb.SendError {
	n := pr.accepted()
	if len(pr.Parts) < 2 || n == 0 {
		return err
	}
	b, _ := json.Marshal(pr)
	e := *err
	e.Progress = string(b)
	e.Debug = fmt.Sprintf("%s (%d of %d parts accepted by the SMSC", err.Debug, n, len(pr.Parts))
	if e.Retryable() {
		e.Debug += "; the others are sent on retry)"
	} else {
		e.Debug += ")"
	}
	return &e
}
