import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "drizzle/", "coverage/", "bench/.out/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  { files: ["src/cli/**", "bench/**", "test/**"], rules: { "no-console": "off" } },
  // The domain is callable from a test, a route and a worker alike: it never sees HTTP, a queue client or a caller.
  {
    files: ["src/domain/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["fastify", "fastify-*", "@fastify/*"], message: "src/domain stays free of HTTP: map errors in src/api/plugins/errors.ts." },
            { group: ["bullmq", "ioredis"], message: "src/domain stays free of the queue: take an enqueue function (src/queue/producer.ts) as a parameter." },
            { group: ["**/api/**", "**/workers/**"], message: "src/domain is called by src/api and src/workers, never the other way round." },
          ],
        },
      ],
    },
  },
  // Tests read JSON responses loosely and let their assertions check the shape.
  { files: ["test/**"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
);
