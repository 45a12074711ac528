// Package salesforce connects an org to Salesforce as its CRM: a thin REST
// client (net/http, golang.org/x/oauth2) that implements switchboard.CRM.
//
// # Authorization
//
// Two OAuth 2.0 flows are supported; the connection acts as the user who
// authorized most recently.
//
//   - Web server flow with PKCE (AuthCodeURL, Exchange): an admin clicks
//     Authorize, allows access, and the callback exchanges the code. The
//     scope is "api refresh_token offline_access id". A new Exchange replaces
//     the previous connection and clears its offline state.
//   - JWT bearer flow (ConnectJWT): a server-to-server connection with the
//     connected app's consumer key, a pre-approved username and the private
//     key whose certificate is uploaded to the connected app. Tokens from
//     this flow have no refresh token: when one is rejected, the grant is
//     simply run again.
//
// The instance URL of a JWT connection must be https, its host must end in
// ".salesforce.com" (usually "<domain>.my.salesforce.com"), and it must not
// be a login host (login.salesforce.com, test.salesforce.com). The host is
// checked by suffix rather than by "contains", so that a look-alike such as
// "acme.salesforce.com.example.net" is refused. The assertion's audience is
// https://test.salesforce.com when the instance host is a sandbox (it
// contains "--" as in "acme--uat.sandbox.my.salesforce.com", or a
// ".sandbox." label) and https://login.salesforce.com otherwise;
// Config.JWTAudience overrides it (an Experience Cloud site, or tests).
//
// # Token refresh and offline connections
//
// A call answered 401 INVALID_SESSION_ID refreshes the access token once and
// is retried once. Refreshes are serialized per org inside a process, and a
// rotated refresh token is stored with Store.UpdateTokens, a compare-and-swap
// on the previous refresh token, so two processes never lose a rotation. A
// token response with error invalid_grant or invalid_client marks the
// connection offline (Store.SetOffline): from then on every call fails at
// once, without touching the network, with a *switchboard.CRMError whose
// Offline is set, until an admin authorizes again.
//
// # Writing messages
//
// WriteMessages writes new messages with sObject Collections upsert by
// external id (PATCH /composite/sobjects/{message object}/{external id
// field}, at most 200 records a call, allOrNone false): the external id is
// Switchboard's message id, so a create that is sent again — after a
// timeout, or a 5xx answer although Salesforce saved it — updates the
// record instead of making a second one. Existing records are updated by
// id with PATCH /composite/sobjects. Records are cut into collections of
// 200 per resource; a single collection is one direct call, and several —
// creates, updates, or both — travel together in /composite requests of up
// to five collections (Salesforce allows 25 subrequests, of which at most 5
// sObject Collections or queries): up to 1,000 records an API call, with
// allOrNone false and each record's result read one by one. Creates of the same message
// and updates of the same record in one call are merged first (the status
// only moves forward). Records that fail with UNABLE_TO_LOCK_ROW are
// retried within the call with jittered back-off; 5xx answers and lost
// answers are retried likewise (every write is idempotent); and
// REQUEST_LIMIT_EXCEEDED leaves the org alone for Config.LimitBackoff.
//
// A create sends the external id, direction, status, and — when they are
// set — body, phone, gateway number, owner, the lookup to the record
// chosen by the record id's key prefix (003 Contact, 00Q Lead, …), debug,
// segments, provider message id and batch id; values that are not set are
// left out, so a retried create never blanks a field. An update sends only
// status, debug, provider message id and segments.
//
// # Link clicks and form records
//
// WriteClicks (switchboard.ClickWriter) and WriteFormResponses
// (switchboard.FormResponseWriter) upsert the same way into the click
// object (Switchboard_Link_Click__c, by click id) and the form-response
// object (Switchboard_Form_Response__c, by session id); Mapping.Clicks and
// Mapping.Forms name the objects and fields, and a mapping saved without
// them gets the defaults (Mapping.WithDefaults). A form record is written
// again as answers arrive and stays one record. Its answers are a readable
// transcript in a long text area, one "question: answer" line each (see
// Transcript). Results are in input order and per-record errors are mapped
// as for messages. docs/salesforce.md lists the defaults.
//
// # Chat export
//
// SaveContactAndTask creates or updates a contact and adds a completed Task
// whose WhoId is the contact, in one /composite request with allOrNone true
// (both or neither). When Mapping.TaskExternalIDField names an External ID
// field on Task (Switchboard_Chat_Id__c by default) and the task carries an
// ExternalID, the task is upserted by that field (PATCH
// /sobjects/Task/{field}/{value}), so a repeated export returns the first
// task instead of creating a second one. A mapping that clears the field
// creates a second task on a repeated export.
//
// # Health check
//
// Check describes every object Switchboard writes: the message, click and
// form objects must be createable and updateable with every mapped field
// (upserts update), and their external id fields must be External ID
// fields; Task must take the chat export's fields; the record objects must
// have their mapped fields.
//
// # Lookups
//
// SOQL is built with every value escaped (EscapeSOQL). Lookups of many
// values at once — FindByPhones, LastOutgoingOwners — cut their lists into
// statements of at most 50,000 characters (half of Salesforce's 100,000)
// and run them with QueryMany, five to a /composite request, where the
// statements travel in the body and are not bounded by the 16,384-byte URI
// limit of GET /query; further batches are read through nextRecordsUrl.
// FindByEmail queries every mapped record object with an email field
// (Contact and Lead by default) in one call.
//
// # API budget
//
// Every response's Sforce-Limit-Info header ("api-usage=N/M") updates the
// org's usage; Usage and Throttle expose it, and Config.OnLimits hears of
// every reading. RefreshUsage reads it with the limits resource (GET
// /limits) when nothing else has lately.
package salesforce
