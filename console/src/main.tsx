import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, session } from "./api";
import { ExportsScreen } from "./exports";
import { ImportsScreen } from "./imports";
import { SegmentsScreen } from "./segments";
import { ErrorNote } from "./ui";
import { UsersScreen } from "./users";

const SCREENS = { imports: "Imports", users: "Users", segments: "Segments", exports: "Exports" } as const;
type Screen = keyof typeof SCREENS;

function currentScreen(): Screen {
  const name = location.hash.replace(/^#\/?/, "");
  return name in SCREENS ? (name as Screen) : "imports";
}

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // The key is checked before it is kept: a wrong one shows the API's 401 sentence here.
      await api("get", "/v1/me", { key: key.trim() });
      session.signIn(key.trim());
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Roster console</h1>
      <form onSubmit={submit}>
        <p>Sign in with your workspace's API key. It is kept for this browser tab's session only.</p>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} aria-describedby="signin-error" />
        <ErrorNote error={error} id="signin-error" />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Console({ onSignOut }: { onSignOut: () => void }) {
  const [screen, setScreen] = useState<Screen>(currentScreen());
  useEffect(() => {
    const on = () => setScreen(currentScreen());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    document.title = `${SCREENS[screen]} · Roster console`;
  }, [screen]);
  return (
    <>
      <header>
        <span class="brand">Roster</span>
        <nav aria-label="Screens">
          {(Object.keys(SCREENS) as Screen[]).map((s) => (
            <a key={s} href={`#/${s}`} aria-current={s === screen ? "page" : undefined}>
              {SCREENS[s]}
            </a>
          ))}
        </nav>
        <nav aria-label="Operations" class="ops">
          <a href="/admin/queues">Queue dashboard</a>
          <a href="/docs">API docs</a>
          <button
            type="button"
            onClick={() => {
              session.signOut();
              onSignOut();
            }}
          >
            Sign out
          </button>
        </nav>
      </header>
      <main>
        <h1>{SCREENS[screen]}</h1>
        {screen === "imports" && <ImportsScreen />}
        {screen === "users" && <UsersScreen />}
        {screen === "segments" && <SegmentsScreen />}
        {screen === "exports" && <ExportsScreen />}
      </main>
    </>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(session.key()));
  return signedIn ? <Console onSignOut={() => setSignedIn(false)} /> : <SignIn onSignedIn={() => setSignedIn(true)} />;
}

const root = document.getElementById("app")!;
root.textContent = ""; // the static "Loading the console…" placeholder; render() would keep it beside the app
render(<App />, root);
