/**
 * The one list of column names that hold secrets (passwords, tokens, API keys). Contacts and events imports never
 * store such a column (suggested as "ignore", an explicit attribute/property mapping is refused), members imports
 * hash passwords, and every kind hides their cells in samples and error reports.
 */

/** Words (lower case, letters and digits only) that name a secret wherever they stand in a header. */
const SECRET_WORDS = new Set([
  "password", "passwd", "passwort", "kennwort", "pwd", "passphrase", "passcode",
  "secret", "token", "apikey", "apisecret", "apitoken", "accesstoken", "refreshtoken", "authtoken", "bearertoken",
  "accesskey", "secretkey", "privatekey", "clientsecret", "credential", "credentials",
]);
/** Too common as parts of other headers ("Day Pass"): a secret only as the whole header. */
const SECRET_HEADERS = new Set(["pass", "pw"]);
/** Headers written without separators ("userPassword", "passwordConfirm"): the secret word starts or ends them. */
const SECRET_AFFIX = /^(password|passwd|passwort)|(password|passwd|passwort|secret|token|apikey)$/;

/** The subset that names a password: a members import maps such a column to "password". */
const PASSWORD_WORDS = new Set(["password", "passwd", "passwort", "kennwort", "pwd", "passphrase", "passcode", "pass", "pw"]);

function words(header: string): string[] {
  return header.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w !== "");
}

/** True when a header (or an attribute/property key) names a secret: "Password", "api_key", "Access Token". */
export function isSecretHeader(header: string): boolean {
  const w = words(header);
  const whole = w.join("");
  if (SECRET_WORDS.has(whole) || SECRET_HEADERS.has(whole) || SECRET_AFFIX.test(whole)) return true;
  // Single words and adjacent pairs, so "API Key" and "Access Token" match as "apikey" and "accesstoken" do.
  return w.some((word, i) => SECRET_WORDS.has(word) || SECRET_WORDS.has(word + (w[i + 1] ?? "")));
}

/** True when a header names a password (a members import maps it to "password"). */
export function isPasswordHeader(header: string): boolean {
  const whole = words(header).join("");
  // Only a trailing word ("New Password"): "password_hash" holds a hash, which must not be hashed again as a password.
  return PASSWORD_WORDS.has(whole) || /(password|passwd|passwort)$/.test(whole);
}
