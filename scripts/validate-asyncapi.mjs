// Validates an AsyncAPI document with the official parser (@asyncapi/parser, a
// devDependency): `python -m server asyncapi | node scripts/validate-asyncapi.mjs`, or give
// the file as the argument. tests/contract/test_asyncapi.py runs it on the generated one.
//
// Prints every diagnostic as one JSON line ({severity, code, message, path}) so the test
// can show them; exits 1 when any has severity "error" (or the parser returns no document).
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const text = readFileSync(process.argv[2] ?? 0, 'utf8'); // fd 0: standard input
const { document, diagnostics } = await new Parser().parse(text);

const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
                [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
let errors = 0;
for (const d of diagnostics) {
  const severity = names[d.severity] ?? String(d.severity);
  if (severity === 'error') errors += 1;
  console.log(JSON.stringify({ severity, code: d.code, message: d.message,
                               path: (d.path ?? []).join('/') }));
}
// The parser withholds the document when the errors make it unusable; count that too.
if (document === undefined && errors === 0) errors = 1;
console.error(`${errors} error(s), ${diagnostics.length} diagnostic(s)`);
process.exit(errors ? 1 : 0);
