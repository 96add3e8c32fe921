// Interop peer for aggregator's tests: AWS Labs' aws-kinesis-agg, an independent implementation
// of the KPL aggregated-record format.
//
//   node kpl_interop.js NODE_DIR deagg   stdin: {"pk": "...", "data": base64} per line
//                                        stdout: {"records": [{"pk", "ehk", "data"}]} or {"error"} per line
//   node kpl_interop.js NODE_DIR agg     stdin: {"pk", "ehk", "data": base64} per line (user records)
//                                        stdout: {"pk", "ehk", "data": base64} per aggregate built
'use strict';
const path = require('path');
const readline = require('readline');

const [nodeDir, mode] = process.argv.slice(2);
const agg = require(require.resolve('aws-kinesis-agg', { paths: [path.resolve(nodeDir)] }));

const lines = [];
readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
	.on('line', (l) => { if (l.length > 0) lines.push(JSON.parse(l)); })
	.on('close', () => {
		const out = [];
		if (mode === 'deagg') {
			for (const rec of lines) {
				agg.deaggregateSync({ partitionKey: rec.pk, data: rec.data, sequenceNumber: '1' }, true, (err, users) => {
					if (err) {
						out.push(JSON.stringify({ error: String(err && err.message || err) }));
						return;
					}
					out.push(JSON.stringify({
						records: users.map((u) => ({ pk: u.partitionKey, ehk: u.explicitPartitionKey || '', data: u.data })),
					}));
				});
			}
		} else if (mode === 'agg') {
			const ra = new agg.RecordAggregator();
			const users = lines.map((u) => {
				const r = { partitionKey: u.pk, data: Buffer.from(u.data, 'base64') };
				if (u.ehk) r.explicitHashKey = u.ehk;
				return r;
			});
			ra.aggregateRecords(users, true, (err, enc) => {
				if (err) throw err;
				out.push(JSON.stringify({ pk: enc.partitionKey, ehk: enc.ExplicitHashKey || '', data: enc.data.toString('base64') }));
			});
		} else {
			throw new Error('unknown mode ' + mode);
		}
		process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
	});
