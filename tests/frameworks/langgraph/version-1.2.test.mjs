// Run only under vitest.config.1.2.mjs: proves that the saver and the validation suite really loaded
// @langchain/langgraph-checkpoint 1.2.x (the alias took effect), not the repo's 1.1.x.
import * as checkpoint from "@langchain/langgraph-checkpoint";
import { SessionStore } from "agent-session";
import { AgentSessionSaver } from "agent-session/langgraph";

describe("@langchain/langgraph-checkpoint 1.2.x is the one in use", () => {
  it("exports the 1.2 writes-order API", () => {
    expect(typeof checkpoint.compareWritesSortKeys).toBe("function");
    expect(typeof checkpoint.writesSortKey).toBe("function");
  });

  it("AgentSessionSaver extends the 1.2 BaseCheckpointSaver", async () => {
    const saver = new AgentSessionSaver(await SessionStore.memory());
    expect(saver).toBeInstanceOf(checkpoint.BaseCheckpointSaver);
    expect(checkpoint.BaseCheckpointSaver.prototype.getDeltaChannelHistory.toString()).not.toContain("block.sort");
  });
});
