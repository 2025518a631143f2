"""The work queues at /work/: 我的待办 (with due times, overdue highlighted), 团队待办 and 退回给我."""

from django.shortcuts import render
from django.utils import timezone

from scrm.views import StaffView

from .. import selectors
from ..dispatch_staff import own_profile
from ..sla_ticket import sla_status, ticket_sla_loaded
from . import TASK_VIEW_PERMISSION

QUEUE_TABS = ("mine", "team", "returned")


class WorkQueueView(StaffView):
    """`/work/`: 我的待办 (with due times, overdue highlighted), 团队待办, 退回给我."""

    permission = TASK_VIEW_PERMISSION

    def get(self, request):
        tab = request.GET.get("tab", "mine")
        if tab not in QUEUE_TABS:
            tab = "mine"
        reader = {"mine": selectors.tasks_mine, "team": selectors.tasks_team,
                  "returned": selectors.tasks_returned}[tab]
        page = self.paginate(reader(user=request.user))
        now = timezone.now()
        for task in page.object_list:  # the ticket's SLA row came with it (select_related)
            task.sla = sla_status(ticket_sla_loaded(task.ticket), now)
        context = {"tab": tab, "page": page, "counts": selectors.queue_counts(user=request.user),
                   "now": now, "query": f"tab={tab}", "profile": own_profile(user=request.user)}
        return render(request, "workflow/queue.html", context)
