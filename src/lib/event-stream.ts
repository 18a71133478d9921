/**
 * Server-Sent Events as Roster's progress stream sends them: messages split by a blank line, `event:` and `data:`
 * fields (data parsed as JSON), comments (`: keep-alive`) and `id:` ignored. Standard APIs only: the CLI (Node) and
 * the console (the browser, which reads the stream with fetch because EventSource cannot send the API key) share it.
 */
export async function* parseEventStream(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<{ event: string; data: unknown }> {
  // Streaming decode: a chunk may end inside a multibyte character.
  const decoder = new TextDecoder("utf-8");
  let buffered = "";
  for await (const chunk of chunks) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) !== -1) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) as unknown };
    }
  }
}
