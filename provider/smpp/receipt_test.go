package smpp

import (
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
)

func TestParseReceipt(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    receipt
		wantErr string
	}{
		{
			name: "specification example",
			in:   "id:0123456789 sub:001 dlvrd:001 submit date:2401021504 done date:2401021506 stat:DELIVRD err:000 text:Hello there",
			want: receipt{ID: "0123456789", Sub: "001", Dlvrd: "001",
				SubmitDate: time.Date(2024, 1, 2, 15, 4, 0, 0, time.UTC), DoneDate: time.Date(2024, 1, 2, 15, 6, 0, 0, time.UTC),
				Stat: "DELIVRD", Err: "000", Text: "Hello there"},
		},
		{
			name: "capitalised Text and seconds in dates",
			in:   "id:abc-1 sub:001 dlvrd:000 submit date:240102150405 done date:240102150409 stat:UNDELIV err:075 Text:-PROFILE",
			want: receipt{ID: "abc-1", Sub: "001", Dlvrd: "000",
				SubmitDate: time.Date(2024, 1, 2, 15, 4, 5, 0, time.UTC), DoneDate: time.Date(2024, 1, 2, 15, 4, 9, 0, time.UTC),
				Stat: "UNDELIV", Err: "075", Text: "-PROFILE"},
		},
		{
			name: "fields out of order, lower-case stat",
			in:   "stat:expired id:77 err:1",
			want: receipt{ID: "77", Stat: "EXPIRED", Err: "1"},
		},
		{
			name: "unreadable date is zero",
			in:   "id:1 submit date:99999999 done date:2413991200 stat:ACCEPTD",
			want: receipt{ID: "1", Stat: "ACCEPTD"},
		},
		{
			name: "text may contain keys",
			in:   "id:5 stat:DELIVRD text:id:9 stat:UNDELIV",
			want: receipt{ID: "5", Stat: "DELIVRD", Text: "id:9 stat:UNDELIV"},
		},
		{name: "missing id", in: "sub:001 stat:DELIVRD", wantErr: "no id"},
		{name: "key inside another word", in: "msgid:5 stat:DELIVRD", wantErr: "no id"},
		{name: "missing stat", in: "id:5 err:000", wantErr: "no stat"},
		{name: "not a receipt", in: "Hello, are you there?", wantErr: "no id"},
		{name: "too long", in: "id:1 stat:DELIVRD text:" + strings.Repeat("x", 1100), wantErr: "more than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReceipt(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("parse =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestReceiptUpdate(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	done := time.Date(2025, 3, 1, 11, 59, 0, 0, time.UTC)
	tests := []struct {
		stat   string
		err    string
		done   time.Time
		want   sb.Status
		code   string
		debug  string
		wantOK bool
	}{
		{stat: "DELIVRD", err: "000", done: done, want: sb.StatusDelivered, wantOK: true},
		{stat: "ACCEPTD", want: sb.StatusSent, wantOK: true},
		{stat: "ENROUTE", want: sb.StatusSent, wantOK: true},
		{stat: "UNDELIV", err: "075", want: sb.StatusUndelivered, code: "075", debug: "SMPP delivery receipt: UNDELIV (err 075)", wantOK: true},
		{stat: "EXPIRED", err: "0", want: sb.StatusFailed, debug: "SMPP delivery receipt: EXPIRED", wantOK: true},
		{stat: "DELETED", want: sb.StatusFailed, debug: "SMPP delivery receipt: DELETED", wantOK: true},
		{stat: "REJECTD", err: "11", want: sb.StatusFailed, code: "11", debug: "SMPP delivery receipt: REJECTD (err 11)", wantOK: true},
		{stat: "UNKNOWN", want: sb.StatusFailed, debug: "SMPP delivery receipt: UNKNOWN", wantOK: true},
		{stat: "SKIPPED"},
	}
	for _, tt := range tests {
		t.Run(tt.stat, func(t *testing.T) {
			u, ok := receiptUpdate(receipt{ID: "m1", Stat: tt.stat, Err: tt.err, DoneDate: tt.done}, now)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			wantAt := tt.done
			if wantAt.IsZero() {
				wantAt = now
			}
			want := sb.StatusUpdate{ProviderMessageID: "m1", Status: tt.want, ErrorCode: tt.code, Debug: tt.debug, At: wantAt}
			if u != want {
				t.Fatalf("update = %+v, want %+v", u, want)
			}
		})
	}
}

func TestParseReceiptPDU(t *testing.T) {
	tests := []struct {
		name    string
		sm      smBody
		wantID  string
		stat    string
		wantErr string
	}{
		{
			name:   "text only",
			sm:     smBody{ESMClass: esmTypeReceipt, ShortMessage: []byte("id:42 stat:DELIVRD err:000")},
			wantID: "42", stat: "DELIVRD",
		},
		{
			name: "TLVs win over text",
			sm: smBody{ESMClass: esmTypeReceipt, ShortMessage: []byte("id:2A stat:ENROUTE"),
				TLVs: []tlv{{Tag: tagReceiptedMessageID, Value: []byte("42\x00")}, {Tag: tagMessageState, Value: []byte{5}}}},
			wantID: "42", stat: "UNDELIV",
		},
		{
			name: "TLVs without text",
			sm: smBody{ESMClass: esmTypeReceipt,
				TLVs: []tlv{{Tag: tagReceiptedMessageID, Value: []byte("42\x00")}, {Tag: tagMessageState, Value: []byte{2}}}},
			wantID: "42", stat: "DELIVRD",
		},
		{
			name:   "UCS-2 receipt text",
			sm:     smBody{ESMClass: esmTypeReceipt, DataCoding: codingUCS2, ShortMessage: encodeUCS2("id:9 stat:REJECTD")},
			wantID: "9", stat: "REJECTD",
		},
		{
			name:    "unreadable",
			sm:      smBody{ESMClass: esmTypeReceipt, ShortMessage: []byte("delivered!")},
			wantErr: "no id",
		},
		{
			name:    "id with control characters",
			sm:      smBody{ESMClass: esmTypeReceipt, ShortMessage: []byte("id:4\x012 stat:DELIVRD")},
			wantErr: "not a valid SMPP message id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseInbound(cmdDeliverSM, tt.sm.marshal())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Receipt == nil || in.Receipt.ID != tt.wantID || in.Receipt.Stat != tt.stat {
				t.Fatalf("receipt = %+v, want id %q stat %q", in.Receipt, tt.wantID, tt.stat)
			}
		})
	}
}

func TestParseInboundMessage(t *testing.T) {
	tests := []struct {
		name string
		sm   smBody
		id   uint32
		want incomingPart
	}{
		{
			name: "international sender",
			sm:   smBody{SourceTON: 1, SourceAddr: "447700900123", DestTON: 1, DestAddr: "441234", ShortMessage: []byte("Hi")},
			want: incomingPart{From: "+447700900123", To: "+441234", Text: []byte("Hi")},
		},
		{
			name: "national sender kept as sent",
			sm:   smBody{SourceTON: 2, SourceAddr: "07700900123", DestTON: 5, DestAddr: "Shop", DataCoding: 8, ShortMessage: encodeUCS2("é")},
			want: incomingPart{From: "07700900123", To: "Shop", Coding: 8, Text: encodeUCS2("é")},
		},
		{
			name: "UDH part",
			sm:   smBody{SourceTON: 1, SourceAddr: "1555", ESMClass: esmUDHI, ShortMessage: append(concatUDH(9, 2, 1), 'a')},
			want: incomingPart{From: "+1555", Text: []byte("a"), Concat: concat{Ref: 9, Total: 2, Seq: 1}, IsPart: true},
		},
		{
			name: "UDH of a single part is not a part",
			sm:   smBody{SourceAddr: "1555", ESMClass: esmUDHI, ShortMessage: append(concatUDH(9, 1, 1), 'a')},
			want: incomingPart{From: "1555", Text: []byte("a"), Concat: concat{Ref: 9, Total: 1, Seq: 1}},
		},
		{
			name: "SAR parameters",
			sm: smBody{SourceAddr: "1555", ShortMessage: []byte("b"), TLVs: []tlv{
				{Tag: tagSARMsgRefNum, Value: []byte{1, 2}}, {Tag: tagSARTotalSegments, Value: []byte{2}}, {Tag: tagSARSegmentSeqnum, Value: []byte{2}}}},
			want: incomingPart{From: "1555", Text: []byte("b"), Concat: concat{Ref: 0x0102, Total: 2, Seq: 2}, IsPart: true},
		},
		{
			name: "message_payload",
			sm:   smBody{SourceAddr: "1555", TLVs: []tlv{{Tag: tagMessagePayload, Value: []byte("long text")}}},
			want: incomingPart{From: "1555", Text: []byte("long text")},
		},
		{
			name: "data_sm",
			id:   cmdDataSM,
			sm:   smBody{SourceTON: 1, SourceAddr: "1555", TLVs: []tlv{{Tag: tagMessagePayload, Value: []byte("via data_sm")}}},
			want: incomingPart{From: "+1555", Text: []byte("via data_sm")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, body := tt.id, tt.sm.marshal()
			if id == cmdDataSM {
				body = dataSMBody(tt.sm)
			} else {
				id = cmdDeliverSM
			}
			in, err := parseInbound(id, body)
			if err != nil {
				t.Fatal(err)
			}
			got := in.Message
			if got == nil || got.From != tt.want.From || got.To != tt.want.To || got.Coding != tt.want.Coding ||
				string(got.Text) != string(tt.want.Text) || got.Concat != tt.want.Concat || got.IsPart != tt.want.IsPart {
				t.Fatalf("message = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// dataSMBody writes the data_sm fields of sm.
func dataSMBody(sm smBody) []byte {
	var e encoder
	e.cstring(sm.ServiceType)
	e.u8(sm.SourceTON)
	e.u8(sm.SourceNPI)
	e.cstring(sm.SourceAddr)
	e.u8(sm.DestTON)
	e.u8(sm.DestNPI)
	e.cstring(sm.DestAddr)
	e.u8(sm.ESMClass)
	e.u8(sm.RegisteredDelivery)
	e.u8(sm.DataCoding)
	for _, t := range sm.TLVs {
		e.tlv(t)
	}
	return e.b
}
