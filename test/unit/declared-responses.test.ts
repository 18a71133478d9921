import Fastify from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { errorsPlugin } from "../../src/api/plugins/errors.js";
import { declaredSerializer, droppedPaths } from "../../src/api/plugins/responses.js";

/** An app answering `body` from GET /thing through `schema`, as the API's routes answer. */
async function answering(schema: z.ZodType, body: unknown) {
  const app = Fastify();
  const errors: unknown[] = [];
  app.addHook("onError", async (_req, _reply, err) => {
    errors.push(err);
  });
  await app.register(errorsPlugin);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(declaredSerializer);
  app.get("/thing", { schema: { response: { 200: schema } } }, async () => body);
  const res = await app.inject({ method: "GET", url: "/thing" });
  await app.close();
  return { res, errors: errors.map(String) };
}

const thing = z.object({ id: z.string(), tags: z.array(z.object({ name: z.string() })), extra: z.unknown() });

describe("declared responses", () => {
  it("serialise what the schema declares, unknown fields as they are", async () => {
    const body = { id: "1", tags: [{ name: "a" }], extra: { any: ["shape", 1] } };
    const { res } = await answering(thing, body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(body);
  });

  it("refuse a field the schema lacks, at any depth, naming it (500 rather than a field clients silently never get)", async () => {
    const { res, errors } = await answering(thing, { id: "1", tags: [{ name: "a", colour: "red" }], extra: null, secret: "x" });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe("internal_error");
    expect(res.body).not.toContain("red");
    expect(errors.join()).toContain("$.tags[0].colour, $.secret");
  });

  it("refuse a Date where the schema says string (views give ISO strings)", async () => {
    const { res } = await answering(z.object({ at: z.string() }), { at: new Date() });
    expect(res.statusCode).toBe(500);
  });

  it("treat an undefined field as absent, as JSON does", () => {
    expect(droppedPaths({ a: 1, b: undefined }, { a: 1 })).toEqual([]);
    expect(droppedPaths([{ a: 1 }, { a: 2, b: 3 }], [{ a: 1 }, { a: 2 }])).toEqual(["$[1].b"]);
  });
});
