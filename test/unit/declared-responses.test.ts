import Fastify from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { errorsPlugin } from "../../src/api/plugins/errors.js";
import { declaredSerializer, droppedPaths, sameJson } from "../../src/api/plugins/responses.js";

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

describe("the serializer's fast path", () => {
  const encodeThenJson = (schema: z.ZodType, data: unknown): string => {
    const result = z.safeEncode(schema, data);
    if (!result.success || droppedPaths(data, result.data).length) return "refused";
    return JSON.stringify(result.data);
  };
  const serialize = (schema: z.ZodType, data: unknown): string => {
    try {
      return declaredSerializer({ schema, method: "GET", url: "/thing", httpStatus: "200" } as never)(data) as string;
    } catch {
      return "refused";
    }
  };

  it("answers byte for byte what encoding then JSON.stringify answered, whatever the schema does", () => {
    const cases: [z.ZodType, unknown][] = [
      [thing, { id: "1", tags: [{ name: "a" }], extra: { any: ["shape", 1] } }],
      [thing, { tags: [{ name: "a" }], id: "1", extra: null }], // keys in another order than the schema's
      [thing, { id: "1", tags: [], extra: undefined, gone: undefined }],
      [thing, { id: "1", tags: [{ name: "a", colour: "red" }], extra: 1 }], // a field too many
      [thing, { id: 1, tags: [], extra: 1 }], // a wrong type
      [z.object({ at: z.string() }), { at: new Date(0) }],
      [z.object({ n: z.number().default(3) }), { n: undefined }],
      [z.object({ n: z.number().default(3) }), {}],
      [z.object({ s: z.string().trim() }), { s: " padded " }],
      [z.object({ when: z.iso.datetime() }), { when: "2026-01-01T00:00:00.000Z" }],
      [z.object({ map: z.record(z.string(), z.string()) }), { map: { b: "1", a: "2" } }],
      [z.object({ list: z.array(z.number().nullable()) }), { list: [1, null, 2] }],
      [z.object({ u: z.union([z.literal("x"), z.object({ y: z.number() })]) }), { u: { y: 1 } }],
    ];
    for (const [schema, data] of cases) expect(serialize(schema, data), JSON.stringify(data)).toBe(encodeThenJson(schema, data));
  });

  it("sameJson compares JSON, key order included, undefined as absent", () => {
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { a: 1, b: [1, { c: null }] })).toBe(true);
    expect(sameJson({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(false);
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson({ a: [1, 2] }, { a: [1] })).toBe(false);
    expect(sameJson({ a: [1] }, { a: { 0: 1 } })).toBe(false);
    expect(sameJson({ a: "1" }, { a: 1 })).toBe(false);
  });
});
