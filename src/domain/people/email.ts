import { domainToUnicode } from "node:url";

/**
 * Emails: what Roster accepts, and the one key people and team members are matched on.
 *
 * The key is computed here and nowhere else: imports, identify, tracking, static segment members and segment
 * conditions call emailKey() in JavaScript, and the database stores the result (`people.email_key`,
 * `team_members.email_key`), which the unique indexes are built on and every SQL match compares against. SQL never
 * lower-cases an email itself: PostgreSQL's lower() follows the database's locale and disagrees with JavaScript on
 * `İ` and the final `ς`, which let two rows be different people in a file and the same person in the index.
 * (The one exception is migration 0004, which pre-fills keys for plain-ASCII emails, where both agree; see
 * backfillEmailKeys.)
 */

const EMAIL = /^[^\s@"(),:;<>[\\\]]+@[^\s@"(),:;<>[\\\]]+\.[^\s@"(),:;<>[\\\]]+$/;
/** Controls (Cc) and invisible format characters (Cf): zero-width space and joiners, BOM, soft hyphen, bidi marks. */
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;
export const MAX_EMAIL_LENGTH = 320;

/**
 * The address as stored, or null when it is not one: trimmed and in Unicode NFC (a composed and a decomposed `é`
 * are the same text, so they are stored alike). An address holding an invisible character (zero-width space,
 * zero-width joiner, BOM, soft hyphen, bidi mark, control character) is rejected, not cleaned: it cannot be told
 * apart from the visible address by eye, and silently dropping characters would merge people behind the user's back.
 * (Trimming is JavaScript's: it takes a U+FEFF at either end away with the whitespace; inside, one is rejected.)
 */
export function normaliseEmail(raw: string): string | null {
  const e = raw.trim().normalize("NFC");
  if (e.length > MAX_EMAIL_LENGTH || !EMAIL.test(e) || INVISIBLE.test(e)) return null;
  // U+FFFD stands for bytes something could not decode: never part of a real address.
  if (e.includes("\uFFFD")) return null;
  return e;
}

/** Printable ASCII with no IDNA ("xn--") label: the key is plain lower case (what migration 0004 computes in SQL). */
const PLAIN_ASCII = /^[!-~]*$/;
const PUNYCODE_LABEL = /(^|[.@])xn--/i;

/**
 * The key two spellings of one address share. Case-insensitive over the whole address, as Roster always was:
 * - NFC first, so composed and decomposed accents are one key;
 * - Unicode's default (locale-independent) lower case, then every final sigma `ς` as `σ` (what Unicode case folding
 *   does), so `ΟΔΥΣΣΕΑΣ`, `οδυσσεας` and `οδυσσεασ` are one key. `İ` (dotted capital I) lowers to `i̇` (i + U+0307),
 *   so `İstanbul@` and `istanbul@` are two people, as in Unicode case folding; a Turkish-only rule would make
 *   `I` lower to `ı` and break every English address;
 * - the domain in its Unicode form (UTS #46, via the WHATWG URL rules Node implements): `a@bücher.example`,
 *   `a@xn--bcher-kva.example` and `a@BÜCHER.example` are one key. A domain that is not a valid IDN keeps its
 *   lower case.
 * Total: any string gets a key (segment conditions compare values that need not be addresses).
 */
export function emailKey(email: string): string {
  const e = email.trim();
  if (PLAIN_ASCII.test(e) && !PUNYCODE_LABEL.test(e)) return e.toLowerCase();
  const n = e.normalize("NFC");
  const at = n.lastIndexOf("@");
  if (at < 0) return fold(n);
  const domain = n.slice(at + 1);
  const plainDomain = PLAIN_ASCII.test(domain) && !PUNYCODE_LABEL.test(domain);
  const unicode = plainDomain ? "" : domainToUnicode(domain);
  return `${fold(n.slice(0, at))}@${unicode ? fold(unicode) : fold(domain)}`;
}

function fold(s: string): string {
  return s.toLowerCase().replaceAll("ς", "σ").normalize("NFC");
}
