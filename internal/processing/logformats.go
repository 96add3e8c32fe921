package processing

// The LOGTOJSON formats are built, like the Kinesis Agent's, from grok-style pieces. The
// pieces below are Java regexes (they go through translateJavaRegex with user patterns) and
// keep that agent's exact definitions, loose spots included, because what they accept and
// what they capture is the output format:
//
//   - the two access-log formats end in .*, so trailing data is ignored and a combined log
//     line parses as a common one;
//   - ident and authuser allow only [a-zA-Z0-9._-]; a host is a name or dotted digits (no
//     IPv6);
//   - the syslog facility is <n.n> with an unescaped '.', so any character passes there;
//   - SYSLOG needs ": " after the program and takes no leading <PRI>.

const (
	reInt       = `(?:[+-]?(?:[0-9]+))`
	rePosInt    = `(?:[1-9][0-9]*)`
	reNonNegInt = `(?:[0-9]+)`
	reAnyData   = `.*`
	reWord      = `\w+`
	reNoQuote   = `[^"]+`
	reIP        = `(?:[\d\.]+)`
	reHostname  = `(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)`
	reIPOrHost  = `(?:` + reHostname + `|` + reIP + `)`
	reURIHost   = `(?:` + reIPOrHost + `(?::` + rePosInt + `)?)`
	reUser      = `(?:[a-zA-Z0-9._-]+)`

	reMonthDay = `(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])`
	reDay      = `(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)`
	reMonth    = `\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b`
	reYear     = `(?:[1-9]\d*)`
	reHour     = `(?:2[0123]|[01]?[0-9])`
	reMinute   = `(?:[0-5][0-9])`
	reSecond   = `(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)`
	reTime     = `(?:` + reHour + `:` + reMinute + `:` + reSecond + `)`

	reHTTPDate        = `(?:` + reMonthDay + `/` + reMonth + `/` + reYear + `:` + reTime + `\s` + reInt + `)`
	reApacheErrorTime = `(?:` + reDay + `\s+` + reMonth + `\s+` + reMonthDay + `\s+` + reTime + `\s+` + reYear + `)`
	reSyslogTimestamp = `(?:` + reMonth + `\s+` + reMonthDay + `\s+` + reTime + `)`
	reRFC3339         = `(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))`
	reSyslogFacility  = `<` + reNonNegInt + `.` + reNonNegInt + `>`
	reSyslogProgram   = `([\w\._/%-]+)(?:\[(` + rePosInt + `)\])?`
	reCommonApacheLog = `^(` + reIPOrHost + `) (` + reUser + `) (` + reUser + `) \[(` + reHTTPDate + `)\] "(` + reNoQuote + `)" (` + reInt + `|\-) (` + reInt + `|\-)`
	reCombinedApache  = reCommonApacheLog + ` "(` + reNoQuote + `)" "(` + reNoQuote + `)"`
	reApacheErrorLog  = `^\[(` + reApacheErrorTime + `)\] \[(?:(` + reWord + `):)?(` + reWord + `)\] \[pid (` + reNonNegInt + `)(?::tid (` + reNonNegInt + `))?\] \[client (` + reURIHost + `)\] (` + reAnyData + `)`
	reSyslogBase      = `^(` + reSyslogTimestamp + `) (?:` + reSyslogFacility + ` )?(` + reUser + `) ` + reSyslogProgram + `: (` + reAnyData + `)`
	reRFC3339Syslog   = `^(` + reRFC3339 + `) (?:` + reSyslogFacility + ` )?(` + reUser + `) ` + reSyslogProgram + `: (` + reAnyData + `)`
)

// logFormats returns the logFormat values the Kinesis Agent accepts (case-sensitive).
func logFormats() map[string]logFormat {
	common := []string{"host", "ident", "authuser", "datetime", "request", "response", "bytes"}
	combined := append(append([]string{}, common...), "referer", "agent")
	errorLog := []string{"timestamp", "module", "severity", "processid", "threadid", "client", "message"}
	syslog := []string{"timestamp", "hostname", "program", "processid", "message"}
	return map[string]logFormat{
		"COMMONAPACHELOG":   {pattern: reCommonApacheLog + `.*`, fields: common, dashNull: true},
		"COMBINEDAPACHELOG": {pattern: reCombinedApache + `.*`, fields: combined, dashNull: true},
		"APACHEERRORLOG":    {pattern: reApacheErrorLog, fields: errorLog, dashNull: true},
		"SYSLOG":            {pattern: reSyslogBase, fields: syslog},
		"RFC3339SYSLOG":     {pattern: reRFC3339Syslog, fields: syslog},
	}
}
