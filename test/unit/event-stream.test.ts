import { describe, expect, it } from "vitest";
import { parseEventStream } from "../../src/lib/event-stream.js";

async function collect(chunks: Buffer[]) {
  async function* body() {
    for (const c of chunks) yield c;
  }
  const out: { event: string; data: unknown }[] = [];
  for await (const m of parseEventStream(body())) out.push(m);
  return out;
}

describe("parseEventStream", () => {
  const stream = 'id: 1\nevent: progress\ndata: {"percent":50}\n\n: keep-alive\n\nid: 2\nevent: import\ndata: {"status":"done","name":"é"}\n\n';

  it("reads events and their JSON data, skipping comments, however the bytes are cut", async () => {
    const expected = [
      { event: "progress", data: { percent: 50 } },
      { event: "import", data: { status: "done", name: "é" } },
    ];
    const bytes = Buffer.from(stream, "utf8");
    expect(await collect([bytes])).toEqual(expected);
    // Every byte cut, including inside the two-byte "é".
    for (const size of [1, 2, 3, 7]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
      expect(await collect(pieces)).toEqual(expected);
    }
  });
});
