// A small SMSC for Switchboard's SMPP peer tests, built on the npm "smpp"
// package's server.
//
//   node smsc.js --port 2775 --system-id acct --password secret [--reject 88:1]
//
// It accepts bind_transceiver when system_id and password match, answers
// submit_sm with message ids (or with the status given by --reject for the
// first N submits), sends a delivery receipt deliver_sm for every accepted
// submit, answers enquire_link and unbind, and reports everything it sees as
// JSON lines on stdout. Commands arrive as JSON lines on stdin:
//
//   {"cmd":"deliver","source_addr":"447700900999","source_addr_ton":1,
//    "destination_addr":"15550001","dest_addr_ton":1,"esm_class":0,
//    "data_coding":8,"short_message":"<hex>"}   originate a deliver_sm
//   {"cmd":"enquire_link"}                      send enquire_link
//   {"cmd":"reject","status":11,"count":1}      refuse the next submits
'use strict';

const smpp = require('smpp');
const readline = require('readline');

// Report short_message as the raw octets received, not decoded text.
delete smpp.commands.submit_sm.params.short_message.filter;

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const port = Number(args.port);
const systemID = args['system-id'];
const password = args.password;
let rejectStatus = 0;
let rejectCount = 0;
if (args.reject) {
  const [status, count] = args.reject.split(':');
  rejectStatus = Number(status);
  rejectCount = Number(count);
}

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

let nextID = 0x1000;
const bound = new Set();

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function sendReceipt(session, submit, messageID) {
  const now = stamp(new Date());
  const text = 'id:' + messageID + ' sub:001 dlvrd:001 submit date:' + now +
    ' done date:' + now + ' stat:DELIVRD err:000 text:none';
  session.deliver_sm({
    source_addr_ton: submit.dest_addr_ton,
    source_addr_npi: submit.dest_addr_npi,
    source_addr: submit.destination_addr,
    dest_addr_ton: submit.source_addr_ton,
    dest_addr_npi: submit.source_addr_npi,
    destination_addr: submit.source_addr,
    esm_class: 0x04,
    data_coding: 0,
    short_message: Buffer.from(text, 'ascii'),
  }, (resp) => {
    report({ event: 'deliver_sm_resp', kind: 'receipt', message_id: messageID, status: resp.command_status });
  });
}

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  session.on('close', () => {
    if (bound.delete(session)) {
      report({ event: 'close' });
    }
  });
  session.on('bind_transceiver', (pdu) => {
    let status = 0;
    if (pdu.system_id !== systemID) {
      status = smpp.ESME_RINVSYSID;
    } else if (pdu.password !== password) {
      status = smpp.ESME_RINVPASWD;
    }
    report({
      event: 'bind', ok: status === 0, status, system_id: pdu.system_id,
      interface_version: pdu.interface_version,
    });
    if (status !== 0) {
      session.send(pdu.response({ command_status: status }), () => session.close());
      return;
    }
    bound.add(session);
    session.send(pdu.response({ system_id: 'SMSC' }));
  });
  session.on('submit_sm', (pdu) => {
    const event = {
      event: 'submit_sm',
      seq: pdu.sequence_number,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      short_message: Buffer.from(pdu.short_message).toString('hex'),
    };
    if (rejectCount > 0) {
      rejectCount--;
      event.status = rejectStatus;
      report(event);
      session.send(pdu.response({ command_status: rejectStatus }));
      return;
    }
    const messageID = (nextID++).toString(16);
    event.status = 0;
    event.message_id = messageID;
    report(event);
    session.send(pdu.response({ message_id: messageID }), () => {
      if (pdu.registered_delivery & 0x01) {
        sendReceipt(session, pdu, messageID);
      }
    });
  });
  session.on('enquire_link', (pdu) => {
    report({ event: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    report({ event: 'unbind' });
    session.send(pdu.response(), () => session.close());
  });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) {
    return;
  }
  const cmd = JSON.parse(line);
  switch (cmd.cmd) {
    case 'deliver':
      for (const session of bound) {
        session.deliver_sm({
          source_addr_ton: cmd.source_addr_ton || 0,
          source_addr_npi: cmd.source_addr_npi || 0,
          source_addr: cmd.source_addr,
          dest_addr_ton: cmd.dest_addr_ton || 0,
          dest_addr_npi: cmd.dest_addr_npi || 0,
          destination_addr: cmd.destination_addr,
          esm_class: cmd.esm_class || 0,
          data_coding: cmd.data_coding || 0,
          short_message: Buffer.from(cmd.short_message, 'hex'),
        }, (resp) => {
          report({ event: 'deliver_sm_resp', kind: 'message', tag: cmd.tag, status: resp.command_status });
        });
      }
      break;
    case 'enquire_link':
      for (const session of bound) {
        session.enquire_link({}, (resp) => {
          report({ event: 'enquire_link_resp', status: resp.command_status });
        });
      }
      break;
    case 'reject':
      rejectStatus = cmd.status;
      rejectCount = cmd.count;
      report({ event: 'reject_set' });
      break;
    default:
      report({ event: 'error', message: 'unknown command ' + cmd.cmd });
  }
});

server.listen(port, '127.0.0.1', () => {
  report({ event: 'listening', port });
});
