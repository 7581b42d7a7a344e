"""An agent that remembers the conversation: run(..., session_id=...) and history=N.

Without storage the conversation is kept in memory; with ``$PLAIT_STORAGE`` (or
``Agent(storage="sqlite:///chat.db")``) it survives the process and is shared by every
process that uses that storage.
"""

from demo_models import demo_model

from plait import Agent

chat = Agent(
    name="Chat",
    model=demo_model(),
    instructions="You are a friendly assistant.",
    history=3,  # Agno: add_history_to_context=True, num_history_runs=3
)

if __name__ == "__main__":
    chat.clear_history("demo-session")  # start the demo afresh, even with $PLAIT_STORAGE
    for question in ("My name is Ada.", "I like tea.", "What do you know about me?"):
        print(f"> {question}")
        print(chat.run(question, session_id="demo-session").content[:80])
    sent = chat.get_last_run_output()
    assert sent is not None
    print(f"the last request carried {sum(m.role == 'user' for m in sent.messages)} user turns")
    print(f"kept: {len(chat.get_history('demo-session'))} messages")
