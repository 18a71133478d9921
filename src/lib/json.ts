import { z } from "zod";

/**
 * JSON.parse, tolerating a leading BOM as Fastify's parser did. JSON.parse defines "__proto__" as an own key like
 * any other, never as the prototype, so a body naming it is data to validate, not an attack to answer with a
 * misleading invalid_json. (Nothing in Roster merges request objects by assignment, the way prototype poisoning needs.)
 */
export function parseJson(text: string): unknown {
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

/** Stands in for "__proto__" while zod reads the record: no CSV header can hold a NUL byte. */
const PROTO_STANDIN = "\u0000__proto__";

function swapKey(input: unknown, from: string, to: string): unknown {
  if (typeof input !== "object" || input === null || !Object.hasOwn(input, from)) return input;
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k === from ? to : k, v]));
}

/**
 * `schema` reading a "__proto__" key as an own property. zod's records drop that key without a word; as the name of
 * a CSV column it is data (a mapping "{header: target}" must be able to name it). The swap wraps the whole schema, a
 * union included, rather than sitting inside it: a union branch that is itself a preprocess comes out of the OpenAPI
 * document as an empty schema, which the docs' converter then drops (the branch vanished from the generated types).
 */
export function keepingProto<T extends z.ZodType>(schema: T) {
  return z
    .preprocess((input) => swapKey(input, "__proto__", PROTO_STANDIN), schema)
    .transform((value) => swapKey(value, PROTO_STANDIN, "__proto__") as z.output<T>);
}

/** A record of strings that keeps a "__proto__" key as an own property (see keepingProto). */
export function stringRecordKeepingProto() {
  return keepingProto(z.record(z.string(), z.string()));
}
